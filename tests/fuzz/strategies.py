"""Hypothesis strategies: hostile inputs for each function, mutated from the real shapes in tests/builders.py.

Every strategy starts from a valid input most of the time and breaks one or a few parts of it, so the fuzz
reaches the deep checks (URL policy, challenge resolution, the status store) and not only the parser.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from mm_shared.constants import DEFAULT_SUBMISSION_TOPIC, started_by
from mm_shared.models.task import TaskEnv
from tests.builders import (
    ACCOUNT,
    REGION,
    KafkaRecord,
    bus_envelope,
    ecs_task_stopped_event,
    msk_event,
    submission_payload,
)

# ---------------------------------------------------------------- the world the inputs are aimed at
ALLOWED_URL_HOSTS = ("topcoder-submissions.s3.amazonaws.com", ".topcoder.com")
VALID_URL = "https://topcoder-submissions.s3.amazonaws.com/mm/solution.zip"
KNOWN_CHALLENGE = "5a0c0f57-8b70-4a2b-9f3e-1c2d3e4f5a6b"  # active, also reachable by its legacy id
KNOWN_LEGACY_ID = 30_054_321
INACTIVE_CHALLENGE = "0f9e8d7c-6b5a-4f3e-8d2c-1b0a9f8e7d6c"
FOREIGN_CHALLENGE = "7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"  # not in the challenge table
ENVIRONMENT = "fuzz"
# A canary for the insecure credentials mode: it may sit in an event, it must never come out of one.
CANARY_TOKEN = "eyJhbGciOiJSUzI1NiJ9.FUZZ-CANARY-M2M-TOKEN.c2lnbmF0dXJl"

LONE_SURROGATES = ("\ud800", "\udfff", "a\udc80b", "\udbff\ud800")
HOSTILE_STRINGS = (
    "",
    " ",
    "\t\n",
    "\x00",
    "null",
    "undefined",
    "\u202e\u0041",
    "\uff41\uff42\uff43",  # full-width look-alikes
    "😀",
    "a" * 3000,
    "9" * 5000,
    "' OR 1=1 --",
    "${jndi:ldap://x}",
    *LONE_SURROGATES,
)
HOSTILE_URLS = (
    "file:///etc/passwd",
    "file://topcoder-submissions.s3.amazonaws.com/mm/solution.zip",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "https://169.254.169.254/latest/meta-data/",
    "https://2852039166/latest/meta-data/",  # 169.254.169.254 as one decimal number
    "https://0xa9fea9fe/",
    "https://[fd00:ec2::254]/latest/meta-data/",
    "https://127.0.0.1/solution.zip",
    "https://localhost/solution.zip",
    "https://evil.example.com/solution.zip",
    "https://topcoder-submissions.s3.amazonaws.com.evil.com/solution.zip",
    "https://evil.com/topcoder-submissions.s3.amazonaws.com/solution.zip",
    "https://topcoder-submissions.s3.amazonaws.com@evil.com/solution.zip",
    "https://user:secret@topcoder-submissions.s3.amazonaws.com/solution.zip",
    "https://topcoder-submissions.s3.amazonaws.com:8443/solution.zip",
    "https://topcoder-submissions.s3.amazonaws.com:0/solution.zip",
    "https://topcoder-submissions.s3.amazonaws.com:99999/solution.zip",
    "https://topcoder-submissions.s3.amazonaws.com\\@evil.com/solution.zip",
    "https://topcoder-submissions.s3.amazonaws.com/a b.zip",
    "https://topcoder-submissions.s3.amazonaws.com/\r\nHost: evil.com",
    "http://topcoder-submissions.s3.amazonaws.com/solution.zip",
    "ftp://topcoder-submissions.s3.amazonaws.com/solution.zip",
    "s3://topcoder-submissions/mm/solution.zip",
    "javascript:alert(1)",
    "data:application/zip;base64,UEsDBA==",
    "//topcoder-submissions.s3.amazonaws.com/solution.zip",
    "https:///solution.zip",
    "https://",
    "https://topcoder.com/solution.zip",  # `.topcoder.com` allows subdomains, not the apex
    "https://xn--topcoder-submissions-9ob.s3.amazonaws.com/solution.zip",
    "https://topcoder-submissions.s3.amazonaws.com/" + "a" * 3000,
    # allowed by the policy: they must still go through
    "https://topcoder-submissions.s3.amazonaws.com:443/solution.zip",
    "https://TOPCODER-SUBMISSIONS.S3.AMAZONAWS.COM/solution.zip",
    "https://topcoder-submissions.s3.amazonaws.com./solution.zip",
    "https://www.topcoder.com/solution.zip",
    VALID_URL,
)
HOSTILE_INTS = (0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 10**40, -(10**40), 10**400)


def lowercase_uuid(value: uuid.UUID) -> str:
    return str(value)


uuids = st.uuids().map(lowercase_uuid)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(HOSTILE_INTS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(HOSTILE_STRINGS),
)
hostile_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


def id_variants(valid: str) -> st.SearchStrategy[Any]:
    """Hostile forms of an id, around a valid one (whitespace, case, braces, 3,000 chars, surrogates)."""
    return st.one_of(
        st.sampled_from(
            [
                valid.upper(),
                f" {valid} ",
                f"\t{valid}\n",
                "{" + valid + "}",
                f"urn:uuid:{valid}",
                valid.replace("-", ""),
                valid[:-1],
                valid + "0",
                valid + "\ud800",
                "\udfff" + valid[1:],
                valid * 83,  # ~3,000 characters
                "12345678",
                "abcdefghij-_KL",  # 14 characters: a v6 id
            ]
        ),
        uuids,
        hostile_values,
    )


# ---------------------------------------------------------------- mutation of a JSON object
# The fields whose rules guard the next stage are targeted more often.
_WEIGHT = {"url": 4, "memberId": 2, "challengeId": 2, "id": 2, "submissionId": 2}


def mutate_object(
    base: dict[str, Any], overrides: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """`base` with 0..3 fields deleted or replaced (by a field-specific or a generic hostile value)."""

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        obj = dict(base)
        targeted = draw(st.integers(0, 2)) > 0
        if overrides and targeted:
            # Targeted (2 in 3): one field, a value aimed at its own rules (reaches the deep checks).
            key = draw(st.sampled_from([k for k in sorted(overrides) for _ in range(_WEIGHT.get(k, 1))]))
            obj[key] = draw(overrides[key])
            return obj
        keys = sorted(set(base) | set(overrides))
        for _ in range(draw(st.integers(0, 3))):
            key = draw(st.sampled_from(keys) | st.text(max_size=6))
            choice = draw(st.sampled_from(["delete", "override", "generic"]))
            if choice == "delete":
                obj.pop(key, None)
            elif choice == "override" and key in overrides:
                obj[key] = draw(overrides[key])
            else:
                obj[key] = draw(hostile_values)
        return obj

    return build()


# ---------------------------------------------------------------- router: Kafka record values
def _valid_payload(submission_id: str, challenge: Any) -> dict[str, Any]:
    return submission_payload(submission_id=submission_id, challenge_id=None, challengeId=challenge)


challenge_refs = st.sampled_from([KNOWN_CHALLENGE, str(KNOWN_LEGACY_ID), KNOWN_LEGACY_ID, INACTIVE_CHALLENGE])


def _payload_overrides(submission_id: str) -> dict[str, st.SearchStrategy[Any]]:
    return {
        "id": id_variants(submission_id),
        "challengeId": st.one_of(
            challenge_refs,
            st.sampled_from([FOREIGN_CHALLENGE, KNOWN_CHALLENGE.upper(), f" {KNOWN_CHALLENGE} "]),
            id_variants(KNOWN_CHALLENGE),
        ),
        "url": st.one_of(st.sampled_from(HOSTILE_URLS), st.sampled_from(HOSTILE_URLS), hostile_values),
        "memberId": st.sampled_from(HOSTILE_INTS)
        | st.sampled_from(["40158994", " 1 ", "1e3", "0x10"])
        | hostile_values,
        "resource": st.sampled_from(["submission", "review", "Submission", " submission", ""]) | hostile_values,
        "created": st.sampled_from(["2026-13-45T00:00:00Z", "yesterday", "2026-12-01T10:00:00Z"]) | hostile_values,
        "submissionPhaseId": st.sampled_from(HOSTILE_INTS) | hostile_values,
        "legacyChallengeId": st.sampled_from([KNOWN_LEGACY_ID, str(KNOWN_LEGACY_ID), -5]) | hostile_values,
        "v5ChallengeId": st.sampled_from([KNOWN_CHALLENGE, FOREIGN_CHALLENGE]) | hostile_values,
    }


_ENVELOPE_OVERRIDES: dict[str, st.SearchStrategy[Any]] = {
    "topic": st.sampled_from(
        [DEFAULT_SUBMISSION_TOPIC, " " + DEFAULT_SUBMISSION_TOPIC, "submission.notification.update"]
    )
    | hostile_values,
    "timestamp": st.sampled_from(["not a time", "2026-12-01T10:00:00Z", 0]) | hostile_values,
    "mime-type": st.sampled_from(["application/json", ""]) | hostile_values,
    "originator": hostile_values,
    "payload": hostile_values,
}


@st.composite
def envelope_objects(draw: st.DrawFn) -> dict[str, Any]:
    submission_id = draw(uuids)
    valid = _valid_payload(submission_id, draw(challenge_refs))
    payload = draw(mutate_object(valid, _payload_overrides(submission_id)))
    envelope = bus_envelope(payload)
    if draw(st.integers(0, 3)):  # mostly the payload alone is hostile: it has the rules the next stage trusts
        return envelope
    return draw(mutate_object(envelope, _ENVELOPE_OVERRIDES))


@st.composite
def flat_objects(draw: st.DrawFn) -> dict[str, Any]:
    submission_id = draw(uuids)
    payload = _valid_payload(submission_id, draw(challenge_refs))
    flat = {k: payload[k] for k in ("id", "challengeId", "url", "memberId", "created")}
    return draw(mutate_object(flat, _payload_overrides(submission_id)))


def _dump(obj: Any) -> bytes:
    # ensure_ascii (the default) writes lone surrogates as \udXXX escapes, as a real producer could.
    return json.dumps(obj, allow_nan=True).encode()


def _deeply_nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode() if depth % 2 else ('{"a":' * depth + "1" + "}" * depth).encode()


@st.composite
def _truncated(draw: st.DrawFn) -> bytes:
    raw = _dump(draw(envelope_objects()))
    return raw[: draw(st.integers(0, max(0, len(raw) - 1)))]


_mutated_real_values = st.one_of(
    envelope_objects().map(_dump), envelope_objects().map(_dump), flat_objects().map(_dump)
)

record_values: st.SearchStrategy[bytes] = st.one_of(
    # mutated real shapes most of the time: they reach the field rules, the challenge lookup and the publish
    *[envelope_objects().map(_dump)] * 6,
    *[flat_objects().map(_dump)] * 2,
    st.binary(max_size=200),
    st.text(max_size=60).map(lambda s: s.encode("utf-8", "surrogatepass")),
    hostile_values.map(_dump),
    _truncated(),
    st.integers(1, 20_000).map(_deeply_nested),
    st.integers(60_000, 90_000).map(lambda n: _dump({"pad": "x" * n, **bus_envelope(submission_payload())})),
    st.sampled_from([b"", b"   ", b"null", b"[]", b"{}", b'{"id":', b"\xff\xfe\x00", b"9" * 5000]),
)


# ---------------------------------------------------------------- router: MSK event shapes
_VALUE_MUTATIONS = ("none",) * 12 + ("missing", "null", "not_base64", "unpadded", "not_text", "urlsafe")


def _mutate_value(value_b64: str, how: str, draw: st.DrawFn) -> Any:
    if how == "null":
        return None
    if how == "not_base64":
        return value_b64[:-1] + draw(st.sampled_from(["!", "*", " ", "\u00e9", "\ud800"]))
    if how == "unpadded":
        return value_b64.rstrip("=")[:-1] if value_b64 else "A"
    if how == "not_text":
        return draw(hostile_values.filter(lambda v: not isinstance(v, str)))
    if how == "urlsafe":
        return value_b64.replace("+", "-").replace("/", "_") + "-_"
    return value_b64


@st.composite
def msk_events(draw: st.DrawFn) -> dict[str, Any]:
    """An MSK event of 1..6 records with hostile values, and its shape mutated where Lambda could differ."""
    count = draw(st.integers(1, 6))
    records = [
        KafkaRecord(
            draw(record_values if draw(st.integers(0, 9)) >= 6 else _mutated_real_values),
            partition=draw(st.integers(0, 2)),
            topic=draw(st.sampled_from([DEFAULT_SUBMISSION_TOPIC] * 9 + ["other.topic"])),
        )
        for _ in range(count)
    ]
    event = msk_event(records)
    # The same submission twice in one batch (duplicates must end as one published + one skipped).
    grouped = event["records"]
    if draw(st.booleans()):
        groups = sorted(grouped)
        group = grouped[draw(st.sampled_from(groups))]
        twin = dict(draw(st.sampled_from(group)))
        twin["offset"] = max(r["offset"] for r in group) + 1
        group.append(twin)
    for group in list(grouped.values()):
        for item in group:
            how = draw(st.sampled_from(_VALUE_MUTATIONS))
            if how == "missing":
                item.pop("value", None)
            else:
                item["value"] = _mutate_value(item["value"], how, draw)
            key_how = draw(st.sampled_from(["absent", "absent", "valid", "not_base64", "null", "hostile"]))
            if key_how == "valid":
                item["key"] = base64.b64encode(b"submission-key").decode()
            elif key_how == "not_base64":
                item["key"] = "%%%not base64"
            elif key_how == "null":
                item["key"] = None
            elif key_how == "hostile":
                item["key"] = draw(hostile_values)
            headers_how = draw(st.sampled_from(["as_is", "as_is", "bytes", "hostile", "missing"]))
            if headers_how == "bytes":
                item["headers"] = [{draw(st.text(max_size=6)): draw(st.lists(st.integers(-300, 300), max_size=5))}]
            elif headers_how == "hostile":
                item["headers"] = draw(hostile_values)
            elif headers_how == "missing":
                item.pop("headers", None)
    # The records map key is Lambda's "<topic>-<partition>"; a record must be judged by its own fields.
    if draw(st.booleans()):
        event["records"] = {
            draw(st.sampled_from(["", "x", "other.topic-9", "submission.notification.create-7"])) + f"#{i}": group
            for i, group in enumerate(grouped.values())
        }
    return event


# ---------------------------------------------------------------- challenge processor: SQS bodies
def routed_body(submission_id: str, *, challenge_id: str = KNOWN_CHALLENGE, offset: int = 42) -> dict[str, Any]:
    """A valid RoutedSubmission on the wire (camelCase), as the router publishes it."""
    return {
        "schemaVersion": 1,
        "submissionId": submission_id,
        "challengeId": challenge_id,
        "legacyChallengeId": KNOWN_LEGACY_ID,
        "memberId": 40_158_994,
        "url": VALID_URL,
        "submissionType": "Contest Submission",
        "fileType": "zip",
        "submissionPhaseId": 764_567,
        "created": "2026-12-01T09:00:00Z",
        "correlationId": f"{DEFAULT_SUBMISSION_TOPIC}-0-{offset}",
        "source": {"topic": DEFAULT_SUBMISSION_TOPIC, "partition": 0, "offset": offset, "timestamp": 1_764_579_600_000},
        "routedAt": "2026-12-01T09:00:01Z",
    }


def _body_overrides(submission_id: str) -> dict[str, st.SearchStrategy[Any]]:
    return {
        "submissionId": id_variants(submission_id),
        "challengeId": st.sampled_from(
            [KNOWN_CHALLENGE, KNOWN_CHALLENGE.upper(), INACTIVE_CHALLENGE, FOREIGN_CHALLENGE, str(KNOWN_LEGACY_ID)]
        )
        | id_variants(KNOWN_CHALLENGE),
        "url": st.one_of(st.sampled_from(HOSTILE_URLS), st.sampled_from(HOSTILE_URLS), hostile_values),
        "memberId": st.sampled_from(HOSTILE_INTS) | st.sampled_from(["40158994", "1.5", "-3"]) | hostile_values,
        "schemaVersion": st.sampled_from([0, 2, "1", None]) | hostile_values,
        "source": st.fixed_dictionaries(
            {"topic": st.text(max_size=10), "partition": st.sampled_from([-1, 0, 2**40]), "offset": hostile_values}
        )
        | hostile_values,
        "fileType": hostile_values,
        "routedAt": st.sampled_from(["never", "2026-12-01T09:00:01Z"]) | hostile_values,
    }


@st.composite
def sqs_bodies(draw: st.DrawFn) -> str:
    """The body of one SQS message: mostly a mutated RoutedSubmission, sometimes not JSON at all."""
    kind = draw(st.sampled_from(["mutated"] * 6 + ["valid", "raw", "truncated", "json_other"]))
    submission_id = draw(uuids)
    body = routed_body(submission_id)
    if kind == "valid":
        return json.dumps(body)
    if kind == "raw":
        return draw(st.text(max_size=80))
    if kind == "json_other":
        return json.dumps(draw(hostile_values), allow_nan=True)
    text = json.dumps(draw(mutate_object(body, _body_overrides(submission_id))), allow_nan=True)
    if kind == "truncated":
        return text[: draw(st.integers(0, len(text) - 1))]
    return text


# A delivery: the body and its receive count; a list of 1..3 is delivered in order (duplicates included).
sqs_deliveries = st.lists(
    st.tuples(sqs_bodies(), st.integers(1, 3)),
    min_size=1,
    max_size=3,
).flatmap(lambda first: st.just(first) | st.just([*first, first[0]]))


# ---------------------------------------------------------------- completion: ECS STOPPED events
CLUSTER_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/mm-scorers"


def task_arn_of(seed: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/mm-scorers/{uuid.uuid5(uuid.NAMESPACE_URL, seed).hex}"


def stopped_event(submission_id: str, arn: str, *, exit_code: int | None = 1, attempt: int = 1) -> dict[str, Any]:
    """A real-shaped STOPPED event of the task the pipeline launched for `submission_id`."""
    event = ecs_task_stopped_event(
        task_arn=arn,
        cluster_arn=CLUSTER_ARN,
        started_by=started_by(ENVIRONMENT, KNOWN_CHALLENGE),
        exit_code=exit_code,
        environment={
            TaskEnv.SUBMISSION_ID.value: submission_id,
            TaskEnv.CHALLENGE_ID.value: KNOWN_CHALLENGE,
            TaskEnv.CORRELATION_ID.value: f"{DEFAULT_SUBMISSION_TOPIC}-0-42",
            TaskEnv.LAUNCH_ATTEMPT.value: str(attempt),
            TaskEnv.M2M_TOKEN.value: CANARY_TOKEN,  # the insecure credentials mode puts it here
        },
    )
    event["time"] = event["detail"]["stoppedAt"] = datetime(2026, 12, 1, 10, 0, tzinfo=UTC).isoformat()
    return event


_Mutation = Callable[[dict[str, Any], st.DrawFn], None]


def _set_env(name: str, value: Any) -> _Mutation:
    def apply(event: dict[str, Any], draw: st.DrawFn) -> None:
        for override in event["detail"]["overrides"]["containerOverrides"]:
            for pair in override["environment"]:
                if pair["name"] == name:
                    pair["value"] = value

    return apply


def _env_value(name: str, values: st.SearchStrategy[Any]) -> _Mutation:
    return lambda event, draw: _set_env(name, draw(values))(event, draw)


def _drop_env(name: str) -> _Mutation:
    def apply(event: dict[str, Any], draw: st.DrawFn) -> None:
        for override in event["detail"]["overrides"]["containerOverrides"]:
            override["environment"] = [p for p in override["environment"] if p["name"] != name]

    return apply


def _detail(key: str, values: st.SearchStrategy[Any]) -> _Mutation:
    return lambda event, draw: event["detail"].__setitem__(key, draw(values))


def _drop_detail(key: str) -> _Mutation:
    return lambda event, draw: event["detail"].pop(key, None)


def _top(key: str, values: st.SearchStrategy[Any]) -> _Mutation:
    return lambda event, draw: event.__setitem__(key, draw(values))


def _drop_top(key: str) -> _Mutation:
    return lambda event, draw: event.pop(key, None)


def _submission_id_variants(event: dict[str, Any], draw: st.DrawFn) -> None:
    pairs = event["detail"]["overrides"]["containerOverrides"][0]["environment"]
    current = next(p["value"] for p in pairs if p["name"] == TaskEnv.SUBMISSION_ID.value)
    _set_env(TaskEnv.SUBMISSION_ID.value, draw(id_variants(current)))(event, draw)


def _foreign_started_by(event: dict[str, Any], draw: st.DrawFn) -> None:
    event["detail"]["startedBy"] = draw(
        st.sampled_from(
            [
                "ecs-svc/1234567890",
                "mm-processor/prod/" + KNOWN_CHALLENGE,
                "mm-processor/" + ENVIRONMENT,
                "mm-processor/" + ENVIRONMENT + "x/" + KNOWN_CHALLENGE,
                " mm-processor/" + ENVIRONMENT + "/" + KNOWN_CHALLENGE,
                "MM-PROCESSOR/" + ENVIRONMENT.upper() + "/" + KNOWN_CHALLENGE,
                "",
            ]
        )
        | hostile_values
    )


def _other_task(event: dict[str, Any], draw: st.DrawFn) -> None:
    arn = task_arn_of(draw(st.text(max_size=5)))
    event["detail"]["taskArn"] = arn
    event["resources"] = [arn]


def _containers(event: dict[str, Any], draw: st.DrawFn) -> None:
    event["detail"]["containers"] = draw(
        st.just([])
        | st.lists(
            st.fixed_dictionaries(
                {"name": st.sampled_from(["scorer", "log_router", ""]) | hostile_values, "exitCode": hostile_values}
            ),
            max_size=3,
        )
        | hostile_values
    )


def _overrides(event: dict[str, Any], draw: st.DrawFn) -> None:
    event["detail"]["overrides"] = draw(
        st.sampled_from([{}, {"containerOverrides": []}, {"containerOverrides": [{}]}, {"containerOverrides": None}])
        | st.fixed_dictionaries({"containerOverrides": st.lists(hostile_values, max_size=2)})
        | hostile_values
    )


def _env_pairs(event: dict[str, Any], draw: st.DrawFn) -> None:
    override = event["detail"]["overrides"]["containerOverrides"][0]
    override["environment"].append(
        draw(st.fixed_dictionaries({"name": hostile_values, "value": hostile_values}) | hostile_values)
    )


_MUTATIONS: tuple[_Mutation, ...] = (
    _submission_id_variants,
    _submission_id_variants,
    _submission_id_variants,
    _env_value(TaskEnv.SUBMISSION_ID.value, st.sampled_from(["", " ", "\u3000", " " * 3000, "x" * 3000])),
    _drop_env(TaskEnv.SUBMISSION_ID.value),
    _env_value(TaskEnv.CHALLENGE_ID.value, id_variants(KNOWN_CHALLENGE)),
    _drop_env(TaskEnv.CHALLENGE_ID.value),
    _env_value(TaskEnv.LAUNCH_ATTEMPT.value, st.sampled_from(["0", "2", "-1", "one", "", "1" * 50]) | hostile_values),
    _drop_env(TaskEnv.LAUNCH_ATTEMPT.value),
    _env_pairs,
    _foreign_started_by,
    _foreign_started_by,
    _drop_detail("startedBy"),
    _other_task,
    _top("source", st.sampled_from(["aws.ec2", "aws.ecs ", "custom.mm", ""]) | hostile_values),
    _top("detail-type", st.sampled_from(["ECS Container Instance State Change", "ecs task state change"])),
    _drop_top("detail-type"),
    _drop_top("source"),
    _top("detail", hostile_values),
    _top("time", hostile_values),
    _top("resources", hostile_values),
    _detail("lastStatus", st.sampled_from(["RUNNING", "PENDING", "DEPROVISIONING", "stopped", ""]) | hostile_values),
    _drop_detail("lastStatus"),
    _drop_detail("taskArn"),
    _detail("taskArn", hostile_values),
    _drop_detail("clusterArn"),
    _detail("stopCode", st.sampled_from(["TaskFailedToStart", "UserInitiated", "SpotInterruption"]) | hostile_values),
    _detail("stoppedReason", hostile_values),
    _detail("stoppedAt", st.sampled_from(["not a date", "9999-99-99"]) | hostile_values),
    _detail("version", hostile_values),
    _containers,
    _overrides,
)


SEEDED_SUBMISSION = "3f2b8c1d-9e4a-4b7c-8d6e-5f4a3b2c1d0e"  # the one submission the pipeline launched
SEEDED_TASK_ARN = task_arn_of("seeded")


@st.composite
def ecs_events(draw: st.DrawFn) -> dict[str, Any]:
    """A STOPPED event of the seeded task with 0..3 mutations (0 mutations: the genuine event, which may act)."""
    event = stopped_event(SEEDED_SUBMISSION, SEEDED_TASK_ARN, exit_code=draw(st.sampled_from([0, 1, 137, None])))
    for _ in range(draw(st.integers(0, 3))):
        try:
            draw(st.sampled_from(_MUTATIONS))(event, draw)
        except (KeyError, TypeError, AttributeError, StopIteration, IndexError):
            continue  # an earlier mutation removed what this one edits
    return event


# One invocation after another: a genuine event may be followed by mutated copies (and vice versa).
ecs_event_sequences = st.lists(ecs_events(), min_size=1, max_size=3)
