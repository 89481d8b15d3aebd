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

from mm_contracts.models.phase import V6_SUBMISSION_TOPIC, ScoringPhase, run_id
from mm_contracts.models.report_due import report_due_event
from mm_contracts.models.task import TaskEnv
from mm_contracts.names import DEFAULT_SUBMISSION_TOPIC, started_by
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
    _mutate_msk_shape(event, draw, value_mutations=_VALUE_MUTATIONS)
    return event


def _mutate_msk_shape(event: dict[str, Any], draw: st.DrawFn, *, value_mutations: tuple[str, ...]) -> None:
    """Lambda's MSK event shape mutated in place: a twin record, values, keys, headers, the records-map keys."""
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
            how = draw(st.sampled_from(value_mutations))
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


# ================================================================ v6 (issue 10: the live platform, decisions 084-088)
# Served v6 challenges (in the challenge table with platform v6); KNOWN_CHALLENGE stays the v5 one, so a v6 record
# naming it is a platform mismatch and a v6 record naming FOREIGN_CHALLENGE is a challenge we do not serve.
V6_CHALLENGE = "9b2f6c1a-3d4e-4f50-8a61-7b8c9d0e1f2a"
V6_INACTIVE_CHALLENGE = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"
V6_ORIGINATOR = "review-api-v6"
V6_TIMESTAMP = "2026-12-01T10:00:00Z"  # fixed: the harness recognises a pristine envelope by equality
V6_SUBMITTED = "2026-12-01T09:59:58.123Z"
NANOID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
nanoids = st.text(alphabet=NANOID_ALPHABET, min_size=14, max_size=14)


def nanoid_variants(valid: str) -> st.SearchStrategy[Any]:
    """Near-valid v6 ids around a valid one: 13 / 15 characters, a character outside the alphabet, padding, a v5
    UUID, a number, full-width and surrogate look-alikes, plus every generic id variant."""
    return st.one_of(
        st.sampled_from(
            [
                valid[:-1],  # 13
                valid + "A",  # 15
                valid[:-1] + ".",
                valid[:-1] + "=",
                valid[:-1] + "/",
                valid[:-1] + "+",  # base64's alphabet, not nanoid's
                valid[:-1] + "\u00e9",
                valid[:-1] + "\uff21",  # full-width A
                valid[:-1] + "\ud800",
                f" {valid} ",  # the bus model strips whitespace: still the same id
                f"{valid}\n",
                valid.replace(valid[0], " ", 1),
                "-" * 14,
                "_" * 14,
                "0" * 14,
                "12345678901234",  # 14 digits: a valid nanoid too
                "3f2b8c1d-9e4a-4b7c-8d6e-5f4a3b2c1d0e",
                valid * 200,
            ]
        ),
        st.integers(),
        st.floats(allow_nan=True),
        uuids,
        st.text(alphabet=NANOID_ALPHABET, min_size=12, max_size=16),
        id_variants(valid),
    )


def v6_payload(submission_id: str, challenge_id: str) -> dict[str, Any]:
    """The payload review-api-v6 `publishMarathonMatchEvent` sends: every field a string."""
    return {
        "submissionId": submission_id,
        "challengeId": challenge_id,
        "submissionUrl": VALID_URL,
        "memberHandle": "tourist",
        "memberId": "88770025",
        "submittedDate": V6_SUBMITTED,
    }


def v6_envelope(payload: dict[str, Any], *, topic: str = V6_SUBMISSION_TOPIC) -> dict[str, Any]:
    return {
        "topic": topic,
        "originator": V6_ORIGINATOR,
        "timestamp": V6_TIMESTAMP,
        "mime-type": "application/json",
        "payload": payload,
    }


v6_challenge_refs = st.sampled_from([V6_CHALLENGE] * 3 + [V6_INACTIVE_CHALLENGE])


def _v6_payload_overrides(submission_id: str) -> dict[str, st.SearchStrategy[Any]]:
    return {
        "submissionId": nanoid_variants(submission_id),
        "challengeId": st.one_of(
            st.sampled_from(
                [
                    V6_CHALLENGE,
                    V6_INACTIVE_CHALLENGE,
                    KNOWN_CHALLENGE,  # a v5 challenge: platform mismatch
                    INACTIVE_CHALLENGE,
                    FOREIGN_CHALLENGE,  # not served
                    V6_CHALLENGE.upper(),
                    f" {V6_CHALLENGE} ",
                    str(KNOWN_LEGACY_ID),  # v6 has no legacy ids
                ]
            ),
            st.just(KNOWN_LEGACY_ID),
            id_variants(V6_CHALLENGE),
        ),
        "submissionUrl": st.one_of(st.sampled_from(HOSTILE_URLS), st.sampled_from(HOSTILE_URLS), hostile_values),
        "memberId": st.sampled_from(["88770025", " 1 ", "0", "-5", "1e3", "0x10", "9" * 19, "9" * 40, "1.0", ""])
        | st.sampled_from(HOSTILE_INTS)  # a JSON number: v6 sends strings
        | hostile_values,
        "memberHandle": st.sampled_from(
            ["tourist", "", " tourist ", "a b", "x" * 64, "x" * 65, "\u00e9l\u00e8ve", "t\x00", "\ud800", None]
        )
        | hostile_values,
        "submittedDate": st.sampled_from([V6_SUBMITTED, "yesterday", "2026-13-45T00:00:00Z", "1764579600", ""])
        | hostile_values,
        "url": st.sampled_from(HOSTILE_URLS),  # the v5 name: ignored by the v6 model
        "id": id_variants(submission_id),  # the v5 name: ignored by the v6 model
    }


_V6_ENVELOPE_OVERRIDES: dict[str, st.SearchStrategy[Any]] = {
    "topic": st.sampled_from(
        [
            V6_SUBMISSION_TOPIC,
            DEFAULT_SUBMISSION_TOPIC,  # a v6 payload claiming the v5 topic
            " " + V6_SUBMISSION_TOPIC,
            V6_SUBMISSION_TOPIC.upper(),
            "marathonmatch.submission.created",
            "",
        ]
    )
    | hostile_values,
    "originator": st.sampled_from([V6_ORIGINATOR, "", "submission-api"]) | hostile_values,
    "timestamp": st.sampled_from(["not a time", V6_TIMESTAMP, 0]) | hostile_values,
    "mime-type": st.sampled_from(["application/json", ""]) | hostile_values,
    "payload": hostile_values,
}


@st.composite
def v6_objects(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A (mutated) v6 envelope or bare payload, and the Kafka topic it travels on."""
    submission_id = draw(nanoids)
    valid = v6_payload(submission_id, draw(v6_challenge_refs))
    if draw(st.integers(0, 2)) == 0:
        del valid["memberHandle"]  # optional to us
    payload = draw(mutate_object(valid, _v6_payload_overrides(submission_id))) if draw(st.integers(0, 4)) else valid
    kafka_topic = draw(st.sampled_from([V6_SUBMISSION_TOPIC] * 8 + [DEFAULT_SUBMISSION_TOPIC, "other.topic"]))
    if draw(st.booleans()):  # the bare payload (what review-api-v6 actually produces on its own topic)
        return payload, kafka_topic
    envelope = v6_envelope(payload)
    if draw(st.integers(0, 3)):
        return envelope, kafka_topic
    return draw(mutate_object(envelope, _V6_ENVELOPE_OVERRIDES)), kafka_topic


@st.composite
def v6_kafka_records(draw: st.DrawFn) -> KafkaRecord:
    obj, topic = draw(v6_objects())
    if draw(st.integers(0, 9)) == 0:
        raw = _dump(obj)
        return KafkaRecord(
            raw[: draw(st.integers(0, max(0, len(raw) - 1)))], partition=draw(st.integers(0, 2)), topic=topic
        )
    return KafkaRecord(_dump(obj), partition=draw(st.integers(0, 2)), topic=topic)


@st.composite
def v6_msk_events(draw: st.DrawFn) -> dict[str, Any]:
    """An MSK event of 1..6 records, mostly v6 (some v5 ones mixed in), with the MSK-shape mutations of
    `msk_events` applied by `_mutate_msk_shape`."""
    count = draw(st.integers(1, 6))
    records: list[KafkaRecord] = []
    for _ in range(count):
        if draw(st.integers(0, 4)):
            records.append(draw(v6_kafka_records()))
        else:
            records.append(
                KafkaRecord(
                    draw(_mutated_real_values), partition=draw(st.integers(0, 2)), topic=DEFAULT_SUBMISSION_TOPIC
                )
            )
    event = msk_event(records)
    _mutate_msk_shape(event, draw, value_mutations=_V6_VALUE_MUTATIONS)
    return event


_V6_VALUE_MUTATIONS = ("none",) * 24 + ("missing", "null", "not_base64", "unpadded", "not_text", "urlsafe")


# ---------------------------------------------------------------- v6: challenge processor SQS bodies
def v6_routed_body(
    submission_id: str,
    *,
    phase: str | None = None,
    skip_reason: str | None = None,
    offset: int = 7,
) -> dict[str, Any]:
    """A valid v6 RoutedSubmission on the wire, as the router publishes it (phase / skipReason when set)."""
    body: dict[str, Any] = {
        "schemaVersion": 1,
        "platform": "v6",
        "submissionId": submission_id,
        "challengeId": KNOWN_CHALLENGE,
        "memberId": 88_770_025,
        "memberHandle": "tourist",
        "url": VALID_URL,
        "fileType": "zip",
        "submittedDate": V6_SUBMITTED,
        "correlationId": f"{V6_SUBMISSION_TOPIC}-0-{offset}",
        "source": {"topic": V6_SUBMISSION_TOPIC, "partition": 0, "offset": offset, "timestamp": 1_764_579_600_000},
        "routedAt": "2026-12-01T09:00:01Z",
    }
    if phase is not None:
        body["phase"] = phase
    if skip_reason is not None:
        body["skipReason"] = skip_reason
    return body


PHASE_VALUES = ("EXAMPLE", "PROVISIONAL", "SYSTEM")
_HOSTILE_PHASES = ("example", "Provisional", " SYSTEM", "SYSTEM ", "FINAL", "", "EXAMPLE#SYSTEM", "SYSTEM\x00")
phase_values = st.sampled_from(PHASE_VALUES) | st.sampled_from(_HOSTILE_PHASES) | hostile_values


def _v6_body_overrides(submission_id: str) -> dict[str, st.SearchStrategy[Any]]:
    return {
        **_body_overrides(submission_id),
        "submissionId": nanoid_variants(submission_id),
        "platform": st.sampled_from(["v5", "v6", "V6", "v7", "", None]) | hostile_values,
        "phase": st.sampled_from([*PHASE_VALUES, None]) | phase_values,
        "skipReason": st.sampled_from(["challenge_inactive", "", "x" * 300, "x" * 301, None]) | hostile_values,
        "memberHandle": st.sampled_from(["tourist", "x" * 64, "x" * 65, ""]) | hostile_values,
    }


@st.composite
def v6_sqs_bodies(draw: st.DrawFn) -> str:
    """One SQS body: mostly a (mutated) v6 RoutedSubmission, with or without a phase or a skip reason; some v5."""
    kind = draw(st.sampled_from(["mutated"] * 6 + ["valid"] * 3 + ["v5", "raw", "truncated"]))
    if kind == "v5":  # a v5 message at a v6 challenge's queue (the router routes by platform; a hand-sent one)
        return json.dumps(routed_body(draw(uuids)))
    if kind == "raw":
        return draw(st.text(max_size=80))
    submission_id = draw(nanoids)
    body = v6_routed_body(
        submission_id,
        phase=draw(st.sampled_from([None, None, None, *PHASE_VALUES])),
        skip_reason=draw(st.sampled_from([None] * 5 + ["challenge_inactive"])),
    )
    if kind == "valid":
        return json.dumps(body)
    text = json.dumps(draw(mutate_object(body, _v6_body_overrides(submission_id))), allow_nan=True)
    if kind == "truncated":
        return text[: draw(st.integers(0, len(text) - 1))]
    return text


v6_sqs_deliveries = st.lists(st.tuples(v6_sqs_bodies(), st.integers(1, 3)), min_size=1, max_size=3).flatmap(
    lambda first: st.just(first) | st.just([*first, first[0]])
)


# ---------------------------------------------------------------- v6: completion (STOPPED events, report-due events)
# The world the completion checker seeds before every input: one v6 run LAUNCHED (its task), one recorded as
# skipped (no task, report due). No other run exists, so no other run may be written or reported.
V6_LAUNCHED_SUBMISSION = "Lq3x_Z9-aB7cD1"
V6_LAUNCHED_PHASE = ScoringPhase.PROVISIONAL
V6_LAUNCHED_RUN = run_id(V6_LAUNCHED_SUBMISSION, V6_LAUNCHED_PHASE)
V6_SKIPPED_SUBMISSION = "s4KiPpEd_run-1"
V6_SKIPPED_PHASE = ScoringPhase.EXAMPLE
V6_SKIPPED_RUN = run_id(V6_SKIPPED_SUBMISSION, V6_SKIPPED_PHASE)
V6_TASK_ARN = task_arn_of("seeded-v6")


def v6_stopped_event(exit_code: int | None = 1) -> dict[str, Any]:
    """The real-shaped STOPPED event of the launched v6 run's task (task contract: MM_PHASE, MM_PLATFORM)."""
    event = stopped_event(V6_LAUNCHED_SUBMISSION, V6_TASK_ARN, exit_code=exit_code)
    pairs = event["detail"]["overrides"]["containerOverrides"][0]["environment"]
    pairs.extend(
        [
            {"name": TaskEnv.PHASE.value, "value": V6_LAUNCHED_PHASE.value},
            {"name": TaskEnv.PLATFORM.value, "value": "v6"},
            {"name": TaskEnv.MEMBER_HANDLE.value, "value": "tourist"},
        ]
    )
    return event


def _append_env(name: str, values: st.SearchStrategy[Any]) -> _Mutation:
    """A second pair with the same name (ECS keeps both; the first value wins when read)."""

    def apply(event: dict[str, Any], draw: st.DrawFn) -> None:
        event["detail"]["overrides"]["containerOverrides"][0]["environment"].append(
            {"name": name, "value": draw(values)}
        )

    return apply


def _prepend_env(name: str, values: st.SearchStrategy[Any]) -> _Mutation:
    def apply(event: dict[str, Any], draw: st.DrawFn) -> None:
        event["detail"]["overrides"]["containerOverrides"][0]["environment"].insert(
            0, {"name": name, "value": draw(values)}
        )

    return apply


def _second_container_override(event: dict[str, Any], draw: st.DrawFn) -> None:
    """Another container's overrides naming another run (a sidecar, or a forged event)."""
    event["detail"]["overrides"]["containerOverrides"].insert(
        draw(st.integers(0, 1)),
        {
            "name": "log_router",
            "environment": [
                {
                    "name": TaskEnv.SUBMISSION_ID.value,
                    "value": draw(st.sampled_from([V6_SKIPPED_SUBMISSION, V6_LAUNCHED_SUBMISSION])),
                },
                {"name": TaskEnv.PHASE.value, "value": draw(st.sampled_from(PHASE_VALUES))},
            ],
        },
    )


_V6_ID_VALUES = nanoid_variants(V6_LAUNCHED_SUBMISSION) | st.sampled_from([V6_SKIPPED_SUBMISSION, SEEDED_SUBMISSION])
_V6_MUTATIONS: tuple[_Mutation, ...] = (
    _drop_env(TaskEnv.PHASE.value),
    _drop_env(TaskEnv.PHASE.value),
    _env_value(TaskEnv.PHASE.value, phase_values),
    _env_value(TaskEnv.PHASE.value, phase_values),
    _append_env(TaskEnv.PHASE.value, phase_values),
    _prepend_env(TaskEnv.PHASE.value, phase_values),
    _env_value(TaskEnv.SUBMISSION_ID.value, _V6_ID_VALUES),
    _env_value(TaskEnv.SUBMISSION_ID.value, _V6_ID_VALUES),
    _append_env(TaskEnv.SUBMISSION_ID.value, _V6_ID_VALUES),
    _prepend_env(TaskEnv.SUBMISSION_ID.value, _V6_ID_VALUES),
    _env_value(TaskEnv.PLATFORM.value, st.sampled_from(["v5", "V6", "", "v7"]) | hostile_values),
    _drop_env(TaskEnv.PLATFORM.value),
    _second_container_override,
    *_MUTATIONS,
)


@st.composite
def v6_ecs_events(draw: st.DrawFn) -> dict[str, Any]:
    """The launched v6 task's STOPPED event with 0..3 mutations (0: the genuine event, which may act)."""
    event = v6_stopped_event(exit_code=draw(st.sampled_from([0, 1, 137, None])))
    for _ in range(draw(st.integers(0, 3))):
        try:
            draw(st.sampled_from(_V6_MUTATIONS))(event, draw)
        except (KeyError, TypeError, AttributeError, StopIteration, IndexError):
            continue
    return event


_REPORT_DUE_RUN_IDS = st.one_of(
    st.sampled_from([V6_SKIPPED_RUN] * 4 + [V6_LAUNCHED_RUN] * 2),
    st.sampled_from(
        [
            run_id(V6_SKIPPED_SUBMISSION, ScoringPhase.PROVISIONAL),  # the skipped submission's other phases
            run_id(V6_SKIPPED_SUBMISSION, ScoringPhase.SYSTEM),
            run_id(V6_LAUNCHED_SUBMISSION, ScoringPhase.EXAMPLE),
            run_id(SEEDED_SUBMISSION, ScoringPhase.PROVISIONAL),  # a v5 run never launched here
            V6_SKIPPED_RUN.lower(),
            V6_SKIPPED_RUN.replace("#", "#" + "#"),
            V6_SKIPPED_RUN + "#EXAMPLE",
            V6_SKIPPED_SUBMISSION + "#example",
            V6_SKIPPED_SUBMISSION + "#FINAL",
            V6_SKIPPED_SUBMISSION + "#",
            V6_SKIPPED_SUBMISSION,
            "#EXAMPLE",
            " " + V6_SKIPPED_RUN,
            V6_SKIPPED_RUN + " ",
            V6_SKIPPED_RUN + "\ud800",
            V6_SKIPPED_SUBMISSION[:-1] + "#EXAMPLE",
            V6_SKIPPED_SUBMISSION + "A#EXAMPLE",
            V6_SKIPPED_RUN * 3,
            "x" * 3000,
        ]
    ),
    st.builds(lambda sid, phase: f"{sid}#{phase}", nanoids, st.sampled_from(PHASE_VALUES)),  # unknown runs
    st.builds(lambda sid, phase: f"{sid}#{phase}", nanoid_variants(V6_SKIPPED_SUBMISSION), phase_values),
    hostile_values,
)

_REPORT_DUE_OVERRIDES: dict[str, st.SearchStrategy[Any]] = {
    "source": st.sampled_from(["mm-processor", "mm-processor ", "MM-PROCESSOR", "aws.ecs", ""]) | hostile_values,
    "detail-type": st.sampled_from(["Run Report Due", "run report due", "ECS Task State Change"]) | hostile_values,
    "detail": st.fixed_dictionaries({"runId": _REPORT_DUE_RUN_IDS})
    | st.fixed_dictionaries({"runId": _REPORT_DUE_RUN_IDS, "state": st.sampled_from(["SUCCEEDED", "FAILED"])})
    | st.fixed_dictionaries({"runId": st.just(V6_SKIPPED_RUN), "aggregateScore": st.just(100)})
    | hostile_values,
    "time": hostile_values,
    "resources": hostile_values,
}


@st.composite
def report_due_events(draw: st.DrawFn) -> dict[str, Any]:
    """The async-invoke payload "Run Report Due": valid for a seeded run, for unknown runs, or malformed."""
    event = report_due_event(draw(st.sampled_from([V6_SKIPPED_RUN] * 3 + [V6_LAUNCHED_RUN])))
    if draw(st.integers(0, 2)) == 0:
        return event
    return draw(mutate_object(event, _REPORT_DUE_OVERRIDES))


# One invocation after another: STOPPED events of the v6 task and report-due events, mixed.
v6_completion_sequences = st.lists(v6_ecs_events() | report_due_events(), min_size=1, max_size=3)
