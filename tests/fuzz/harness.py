"""Drive each function's real logic with one fuzz input and return what went wrong (the findings).

One checker per function; each is built once (fakes, or moto for the status table) and reset before every
input, so inputs are independent and a failing one replays alone when hypothesis shrinks it. A checker never
raises for a finding: the tests assert the list is empty, the benchmark counts it.

The properties come from issue 7 ("Input the next stage trusts blindly") and the common status protocol:
- router: the batch never raises on bad input; each record ends in exactly one state (published / audited as
  skipped or rejected); every published body is a valid RoutedSubmission whose URL passes the URL policy.
- challenge processor: RunTask only for a valid body of this challenge with an allowed URL, at most once per
  submission; every other body ends in `RecordFailed` with a reason, never another exception.
- completion: parsing raises nothing but `InvalidEventError`; no status item is created and no review posted
  for a submission the pipeline did not launch; the launched one is acted on only by its own task's event.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import ValidationError

from mm_contracts.models.phase import V6_SUBMISSION_TOPIC, Platform, ScoringPhase, run_id
from mm_contracts.names import DEFAULT_SUBMISSION_TOPIC
from tests.fuzz.strategies import (
    ALLOWED_URL_HOSTS,
    CANARY_TOKEN,
    CLUSTER_ARN,
    ENVIRONMENT,
    INACTIVE_CHALLENGE,
    KNOWN_CHALLENGE,
    KNOWN_LEGACY_ID,
    SEEDED_SUBMISSION,
    SEEDED_TASK_ARN,
    V6_CHALLENGE,
    V6_INACTIVE_CHALLENGE,
    V6_LAUNCHED_PHASE,
    V6_LAUNCHED_RUN,
    V6_LAUNCHED_SUBMISSION,
    V6_ORIGINATOR,
    V6_SKIPPED_PHASE,
    V6_SKIPPED_RUN,
    V6_SKIPPED_SUBMISSION,
    V6_SUBMITTED,
    V6_TASK_ARN,
    V6_TIMESTAMP,
)

# The seeded submission's one run: the config's single (v5) phase, PROVISIONAL (`test_type`'s default).
SEEDED_PHASE = ScoringPhase.PROVISIONAL
SEEDED_RUN = run_id(SEEDED_SUBMISSION, SEEDED_PHASE)

MAX_MEMBER_ID = 2**63 - 1  # a signed 64-bit integer: what every later store holds exactly
_METADATA_HOSTS = ("169.254.169.254", "2852039166", "0xa9fea9fe", "fd00:ec2::254")


class Property:
    """The families the findings fall in (what the benchmark prints, what each test asserts separately)."""

    ESCAPED = "escaped exception"
    STATES = "not in exactly one state"
    ACTED = "acted on, should not have been"
    OTHER = "other property"

    ALL = (ESCAPED, STATES, ACTED, OTHER)


@dataclass(frozen=True)
class Finding:
    """One property violation: `kind` is the stable category counted by the benchmark, `detail` a safe hint."""

    family: str
    kind: str
    detail: str = ""

    def __str__(self) -> str:
        return f"[{self.family}] {self.kind}" + (f": {self.detail}" if self.detail else "")


def _escaped(error: BaseException) -> Finding:
    return Finding(Property.ESCAPED, type(error).__name__, _safe(str(error)))


def of_family(findings: list[Finding], family: str) -> list[str]:
    return [str(finding) for finding in findings if finding.family == family]


def _safe(text: str, limit: int = 160) -> str:
    text = text.replace(CANARY_TOKEN, "***canary***")
    text = text.encode("utf-8", "backslashreplace").decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------- oracles (independent of the code under test)
def url_refused_because(url: str) -> str | None:
    """Why the URL policy must refuse `url` (None: it may be fetched).

    The shared policy (mm_contracts.url_policy) when present, plus hard rules the fuzz checks on its own so a
    hole in the policy shows up too: https only, no userinfo, port 443, an allow-listed host, never the
    instance-metadata address, text that can be encoded at all.
    """
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:
        return "not encodable (lone surrogate)"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "unparsable"
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme.lower() != "https":
        return "scheme is not https"
    if "@" in parts.netloc:
        return "userinfo"
    if port not in (None, 443):
        return "port"
    if any(marker in host for marker in _METADATA_HOSTS):
        return "instance-metadata address"
    from mm_contracts.models.bus import host_is_allowed

    if not host_is_allowed(host, ALLOWED_URL_HOSTS):
        return "host not allowed"
    try:
        from mm_contracts.url_policy import url_refusal
    except ImportError:  # before the shared policy existed: decision 014's rules live in the bus model
        from mm_contracts.models.bus import FlatSubmission

        try:
            FlatSubmission.model_validate(
                {"id": SEEDED_SUBMISSION, "challengeId": KNOWN_CHALLENGE, "memberId": 1, "url": url}
            )
        except ValidationError:
            return "refused by the URL rules"
        return None
    refusal = url_refusal(url, ALLOWED_URL_HOSTS)
    return None if refusal is None else f"refused by the URL policy ({refusal.value})"


def routed_refused_because(body: str | dict[str, Any], *, challenge_id: str) -> str | None:
    """Why a RoutedSubmission body must not be acted on by the processor of `challenge_id` (None: valid)."""
    from mm_contracts.models.routed import RoutedSubmission

    try:
        if isinstance(body, str):
            routed = RoutedSubmission.model_validate_json(body)
        else:
            routed = RoutedSubmission.model_validate(body)
    except ValidationError:
        return "not a RoutedSubmission"
    if routed.challenge_id != challenge_id:
        return "another challenge"
    if not 1 <= routed.member_id <= MAX_MEMBER_ID:
        return "memberId out of range"
    return url_refused_because(routed.url)


def _canonical(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(UUID(value.strip()))
    except ValueError:
        return None


@contextlib.contextmanager
def quiet(logger: Any) -> Iterator[None]:
    """The function's logger at CRITICAL only while one input runs (10,000 inputs would print ~50 MB)."""
    previous = logger.log_level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


# ---------------------------------------------------------------- v6 record oracles (issue 10)
_NANOID = re.compile(r"^[A-Za-z0-9_-]{14}$")
_DIGITS = re.compile(r"^[0-9]{1,19}$")
_HANDLE = re.compile(r"^[\x21-\x7e]{1,64}$")
# What the router may publish a v6 record as: its served v6 challenges, and the skip reason each must carry.
V6_SERVED = {V6_CHALLENGE: None, V6_INACTIVE_CHALLENGE: "challenge_inactive"}
_V6_PAYLOAD_KEYS = {"submissionId", "challengeId", "submissionUrl", "memberHandle", "memberId", "submittedDate"}


def _decoded_object(item: dict[str, Any]) -> dict[str, Any] | None:
    """The record's value as the JSON object it carries, decoded strictly (None: not one)."""
    value = item.get("value")
    if not isinstance(value, str):
        return None
    try:
        parsed = json.loads(base64.b64decode(value, validate=True).decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _uuid_text(value: Any) -> str | None:
    """A canonical UUID (case aside) as text: 36 characters, hyphenated."""
    if not isinstance(value, str) or len(value) != 36:
        return None
    try:
        parsed = UUID(value)
    except ValueError:
        return None
    return str(parsed) if str(parsed) == value.lower() else None


def _v6_payload_of(item: dict[str, Any]) -> tuple[dict[str, Any], bool] | None:
    """The v6 payload of a record and whether it came in an envelope (None: the record is not read as v6)."""
    obj = _decoded_object(item)
    # The Kafka topic is judged first: a topic the environment does not read is skipped, whatever it carries.
    if obj is None or item.get("topic") not in (V6_SUBMISSION_TOPIC, DEFAULT_SUBMISSION_TOPIC):
        return None
    if any(marker in obj for marker in ("topic", "payload", "originator", "mime-type")):
        topic = obj.get("topic")
        if not isinstance(topic, str) or topic.strip() != V6_SUBMISSION_TOPIC:
            return None
        payload = obj.get("payload")
        return (payload, True) if isinstance(payload, dict) else None
    return (obj, False) if item.get("topic") == V6_SUBMISSION_TOPIC else None


def v6_published_refused_because(body: dict[str, Any], item: dict[str, Any] | None) -> str | None:
    """Why a published v6 body must not have been published from its record (None: it is that record's valid
    v6 submission of a served challenge). Independent of the router's code: the record is decoded here again."""
    why = routed_refused_because(json.dumps(body), challenge_id=str(body.get("challengeId")))
    if why is not None:
        return why
    if item is None:
        return "no record with its correlation id"
    found = _v6_payload_of(item)
    if found is None:
        return "its record is not a v6 record (topic)"
    payload, _ = found
    raw_id = payload.get("submissionId")
    if not isinstance(raw_id, str) or not _NANOID.match(raw_id.strip()):
        return "the record's submissionId is not a nanoid"
    if body.get("submissionId") != raw_id.strip():
        return "another submissionId than the record's"
    raw_challenge = payload.get("challengeId")
    challenge = _uuid_text(raw_challenge.strip() if isinstance(raw_challenge, str) else None)
    if challenge not in V6_SERVED:
        return "the record's challenge is not a served v6 challenge"
    if body.get("challengeId") != challenge:
        return "another challenge than the record's"
    if body.get("skipReason") != V6_SERVED[challenge]:
        return f"skipReason {body.get('skipReason')!r} for challenge {challenge}"
    member = payload.get("memberId")
    if not isinstance(member, str) or not _DIGITS.match(member.strip()) or not 1 <= int(member) <= MAX_MEMBER_ID:
        return "the record's memberId is not a string of a positive 64-bit integer"
    if body.get("memberId") != int(member):
        return "another memberId than the record's"
    url = payload.get("submissionUrl")
    if not isinstance(url, str):
        return "the record has no submissionUrl"
    url_why = url_refused_because(url.strip())
    if url_why is not None:
        return f"the record's submissionUrl: {url_why}"
    handle = payload.get("memberHandle")
    if handle not in (None, "") and not (isinstance(handle, str) and _HANDLE.match(handle.strip())):
        return "the record's memberHandle is not a plain handle"
    return None


def pristine_v6_record(item: dict[str, Any]) -> str | None:
    """The challenge of a record that is exactly a valid v6 submission as review-api-v6 publishes it, for a served
    challenge (so the router must publish it); None for anything else. Stricter than the router on purpose."""
    found = _v6_payload_of(item)
    if found is None:
        return None
    payload, in_envelope = found
    if in_envelope:
        obj = _decoded_object(item) or {}
        expected = {
            "topic": V6_SUBMISSION_TOPIC,
            "originator": V6_ORIGINATOR,
            "timestamp": V6_TIMESTAMP,
            "mime-type": "application/json",
        }
        if set(obj) != {*expected, "payload"} or any(obj[key] != value for key, value in expected.items()):
            return None
    if not set(payload) <= _V6_PAYLOAD_KEYS or not {"submissionId", "challengeId", "submissionUrl", "memberId"} <= set(
        payload
    ):
        return None
    submission_id, challenge, member, url = (
        payload["submissionId"],
        payload["challengeId"],
        payload["memberId"],
        payload["submissionUrl"],
    )
    if not (isinstance(submission_id, str) and _NANOID.match(submission_id)):
        return None
    if not isinstance(challenge, str) or challenge not in V6_SERVED:
        return None
    if not (isinstance(member, str) and _DIGITS.match(member) and 1 <= int(member) <= MAX_MEMBER_ID):
        return None
    if not isinstance(url, str) or url_refused_because(url) is not None or url != url.strip():
        return None
    if (
        payload.get("memberHandle", "tourist") != "tourist"
        or payload.get("submittedDate", V6_SUBMITTED) != V6_SUBMITTED
    ):
        return None
    return str(challenge)


# ---------------------------------------------------------------- moto for the status table
@contextlib.contextmanager
def isolated_aws() -> Iterator[str]:
    """A moto account with the status table; yields its name. Usable outside pytest (the benchmark)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "MMProcessor",
    }.items():
        os.environ.setdefault(name, value)
    from moto import mock_aws

    from mm_adapters import aws as aws_clients
    from mm_capacity.store import capacity_table_definition
    from mm_contracts.tables import status_table_definition

    aws_clients.reset_clients()
    with mock_aws():
        name = "mm-fuzz-status"
        aws_clients.client("dynamodb").create_table(**status_table_definition(name))
        aws_clients.client("dynamodb").create_table(**capacity_table_definition(CAPACITY_TABLE))
        yield name
    aws_clients.reset_clients()


def _empty_table(table: str) -> list[dict[str, Any]]:
    """Every item of the table (wire form), then none: the next input starts from a clean table (and a clean
    capacity table: no slot or queue entry of an earlier input)."""
    from mm_adapters import aws as aws_clients

    ddb = aws_clients.client("dynamodb")
    from mm_contracts.names import CAPACITY_TABLE_PARTITION_KEY, CAPACITY_TABLE_SORT_KEY, STATUS_TABLE_PARTITION_KEY

    items: list[dict[str, Any]] = ddb.scan(TableName=table).get("Items", [])
    for item in items:
        ddb.delete_item(TableName=table, Key={STATUS_TABLE_PARTITION_KEY: item[STATUS_TABLE_PARTITION_KEY]})
    keys = (CAPACITY_TABLE_PARTITION_KEY, CAPACITY_TABLE_SORT_KEY)
    for item in ddb.scan(TableName=CAPACITY_TABLE).get("Items", []):
        ddb.delete_item(TableName=CAPACITY_TABLE, Key={key: item[key] for key in keys})
    return items


# The capacity table and caps of the fuzzed functions: roomy, so every valid run is admitted and launched at once
# (admission itself is the capacity tests' subject; here a cap must never hide a launch the input asks for).
CAPACITY_TABLE = "mm-fuzz-capacity"
ROOMY_CAPACITY = {"maxRunningTasks": 5000, "runTaskPerSecond": 100}
ROOMY_CHALLENGE_CAPACITY = {"maxRunningTasks": 1000}


def _capacity_parameter() -> str:
    from mm_contracts.names import capacity_parameter_name

    return capacity_parameter_name()


# ---------------------------------------------------------------- router
class RouterChecker:
    """The router's logic (`Router.route`, as the handler calls it) over the unit fakes of SNS, SQS, DynamoDB."""

    name = "router"

    def __init__(self) -> None:
        from mm_contracts.settings import RouterSettings
        from tests.unit.router.support import alias_item, challenge_item, router_settings

        extra = {"audit_marks_table_name": "mm-fuzz-audit-marks"}  # once-per-record audit (defect 9), when present
        self._settings = router_settings(
            allowed_url_hosts=ALLOWED_URL_HOSTS,
            max_record_bytes=65_536,
            platforms=(Platform.V5, Platform.V6),  # an environment in migration: both topics read
            **{name: value for name, value in extra.items() if name in RouterSettings.model_fields},
        )
        self._challenges = [
            challenge_item(KNOWN_CHALLENGE, legacy_id=KNOWN_LEGACY_ID),
            alias_item(KNOWN_LEGACY_ID, KNOWN_CHALLENGE),
            challenge_item(INACTIVE_CHALLENGE, active=False),
            challenge_item(V6_CHALLENGE, platform=Platform.V6),
            challenge_item(V6_INACTIVE_CHALLENGE, active=False, platform=Platform.V6),
        ]

    def units(self, event: dict[str, Any]) -> int:
        return sum(len(group) for group in event["records"].values())

    def check(self, event: dict[str, Any]) -> list[Finding]:
        from router_lambda.observability import logger
        from tests.unit.router.support import harness

        world = harness(challenges=self._challenges, settings=self._settings)
        findings: list[Finding] = []
        failed: dict[str, str] = {}
        try:
            with quiet(logger):
                report = world.router.route(event)
            for index, why in report.failed.items():
                record = report.records[index]
                failed[record.correlation_id] = why
        except Exception as error:  # the whole batch would fail and be re-delivered forever
            findings.append(_escaped(error))
        for correlation_id, why in failed.items():
            # No infrastructure fault is injected here: a failed record is a crash caught per record.
            kind = why.removeprefix("internal error ") if why.startswith("internal error") else why
            findings.append(
                Finding(Property.ESCAPED, f"{kind} (caught per record: failed without a fault)", correlation_id)
            )

        items = {
            f"{item['topic']}-{item['partition']}-{item['offset']}": item
            for group in event["records"].values()
            for item in group
        }
        published: Counter[str] = Counter()
        for entry in world.sns.published:
            try:
                body = json.loads(entry["Message"])
            except ValueError:
                findings.append(Finding(Property.ACTED, "published a body that is not JSON"))
                continue
            correlation_id = str(body.get("correlationId"))
            published[correlation_id] += 1
            if body.get("platform") == Platform.V6.value:
                why_not = v6_published_refused_because(body, items.get(correlation_id))
            else:
                why_not = routed_refused_because(entry["Message"], challenge_id=KNOWN_CHALLENGE)
                if why_not is None and body.get("skipReason") is not None:
                    why_not = "a v5 submission published with a skip reason"
            if why_not is not None:
                findings.append(Finding(Property.ACTED, f"published an invalid submission ({why_not})"))
        audited = Counter(str(message.get("correlationId")) for message in world.sqs.messages)
        duplicates = {
            str(message.get("correlationId"))
            for message in world.sqs.messages
            if message.get("reason") == "duplicate_in_batch"
        }
        for correlation_id, item in items.items():
            if published[correlation_id] or correlation_id in duplicates or correlation_id in failed:
                continue
            if pristine_v6_record(item) is not None:
                findings.append(
                    Finding(Property.OTHER, "valid v6 submission of a served challenge not published", correlation_id)
                )

        for group in event["records"].values():
            for item in group:
                correlation_id = f"{item['topic']}-{item['partition']}-{item['offset']}"
                states = published[correlation_id] + audited[correlation_id] + (correlation_id in failed)
                if states != 1:
                    findings.append(
                        Finding(
                            Property.STATES,
                            f"record in {states} states",
                            f"{correlation_id}: published {published[correlation_id]}, "
                            f"audited {audited[correlation_id]}, failed {correlation_id in failed}",
                        )
                    )
        return findings


# ---------------------------------------------------------------- challenge processor
@dataclass
class _ProcessorWorld:
    processor: Any
    launcher: Any


class ProcessorChecker:
    """`ChallengeProcessor.process` with the real StatusStore on a moto table; SSM, ECS and tokens are fakes.

    `platform` is the challenge's: v5 (one PROVISIONAL run per submission) or v6 (EXAMPLE and PROVISIONAL on
    submission; no SYSTEM phase configured, so a message asking for SYSTEM must launch nothing).
    """

    name = "challenge processor"

    def __init__(self, table: str, platform: Platform = Platform.V5) -> None:
        self._table = table
        self._platform = platform
        if platform is Platform.V6:
            self.name = "challenge processor v6"
            self._configured: tuple[ScoringPhase, ...] = (ScoringPhase.EXAMPLE, ScoringPhase.PROVISIONAL)
            self._on_submission: tuple[ScoringPhase, ...] = (ScoringPhase.EXAMPLE, ScoringPhase.PROVISIONAL)
        else:
            self._configured = self._on_submission = (SEEDED_PHASE,)

    def _config_document(self) -> dict[str, Any]:
        from tests.unit.challenge.helpers import config_document, v6_config_document

        if self._platform is Platform.V5:
            return {**config_document(challenge_id=KNOWN_CHALLENGE), "capacity": ROOMY_CHALLENGE_CAPACITY}
        return v6_config_document(
            challengeId=KNOWN_CHALLENGE,
            phases=[
                {"phase": "EXAMPLE", "startSeed": 1, "numberOfTests": 10, "timeout": 600},
                {"phase": "PROVISIONAL", "startSeed": 1001, "numberOfTests": 100, "timeout": 2400},
            ],
            capacity=ROOMY_CHALLENGE_CAPACITY,
        )

    def _world(self) -> _ProcessorWorld:
        from challenge_lambda.processor import ChallengeProcessor
        from mm_contracts.settings import ChallengeProcessorSettings
        from tests.conftest import Clock
        from tests.unit.challenge.helpers import (
            PARAMETER_NAME,
            FakeLauncher,
            FakeMetrics,
            FakeSsm,
            FakeTokenProvider,
            captured_logger,
        )

        env = {
            "ENVIRONMENT_NAME": ENVIRONMENT,
            "CHALLENGE_ID": KNOWN_CHALLENGE,
            "CHALLENGE_CONFIG_PARAMETER": PARAMETER_NAME,
            "STATUS_TABLE_NAME": self._table,
            "MAX_RECEIVE_COUNT": "3",
            "LAUNCH_LEASE_SECONDS": "60",
            "CAPACITY_TABLE_NAME": CAPACITY_TABLE,
            "CAPACITY_PARAMETER_NAME": _capacity_parameter(),
            "CHALLENGE_QUEUE_URL": f"https://sqs.us-east-1.amazonaws.com/123456789012/mm-fuzz-{KNOWN_CHALLENGE}",
        }
        if "allowed_url_hosts" in ChallengeProcessorSettings.model_fields:
            env["ALLOWED_URL_HOSTS"] = ",".join(ALLOWED_URL_HOSTS)
        ssm = FakeSsm()
        ssm.put(PARAMETER_NAME, self._config_document())
        ssm.put(_capacity_parameter(), ROOMY_CAPACITY)
        launcher = FakeLauncher()
        clock = Clock()
        logger, _ = captured_logger()
        logger.setLevel(logging.CRITICAL)  # its own logger: thousands of deliveries, nothing to read in them
        tokens = FakeTokenProvider(token=CANARY_TOKEN)
        processor = ChallengeProcessor.from_settings(
            ChallengeProcessorSettings.from_env(env),
            metrics=FakeMetrics(),
            logger=logger,
            ssm_client=ssm,
            launcher=launcher,  # type: ignore[arg-type]
            token_provider_factory=lambda: tokens,
            clock=clock,
            config_clock=clock,
            sleep=clock.advance,  # pacing waits in the fuzz clock's time, never the machine's
        )
        return _ProcessorWorld(processor, launcher)

    def units(self, deliveries: list[tuple[str, int]]) -> int:
        return len(deliveries)

    def _expected_phases(self, body: str) -> tuple[str | None, set[str]]:
        """(why nothing may be launched, the phases the body's first delivery must launch)."""
        from mm_contracts.models.routed import RoutedSubmission

        why_not = routed_refused_because(body, challenge_id=KNOWN_CHALLENGE)
        if why_not is not None:
            return why_not, set()
        routed = RoutedSubmission.model_validate_json(body)
        if routed.platform is not self._platform:
            return f"a {routed.platform.value} message at a {self._platform.value} challenge", set()
        if routed.skip_reason is not None:
            return _SKIPPED, set()
        if routed.phase is not None:
            if routed.phase not in self._configured:
                return f"phase {routed.phase.value} not configured", set()
            return None, {routed.phase.value}
        return None, {phase.value for phase in self._on_submission}

    def check(self, deliveries: list[tuple[str, int]]) -> list[Finding]:
        from challenge_lambda.processor import InboundMessage, RecordFailed

        _empty_table(self._table)
        world = self._world()
        findings: list[Finding] = []
        launched_before: set[tuple[str, str]] = set()
        for number, (body, receive_count) in enumerate(deliveries):
            why_not, expected = self._expected_phases(body)
            calls_before = len(world.launcher.requests)
            failed: RecordFailed | None = None
            try:
                world.processor.process(
                    InboundMessage(message_id=f"m-{number}", body=body, receive_count=receive_count)
                )
            except RecordFailed as error:
                failed = error
                if not error.reason_code:
                    findings.append(Finding(Property.OTHER, "RecordFailed without a reason"))
            except Exception as error:
                findings.append(_escaped(error))
                continue
            new_runs = [_run_of(request) for request in world.launcher.requests[calls_before:]]
            if why_not is not None:
                if new_runs:
                    findings.append(Finding(Property.ACTED, f"RunTask for a body it must refuse ({why_not})"))
                # A v6 skip is acknowledged (its runs recorded as skipped); anything else refused goes back failed.
                # An unconfigured phase whose run exists already (e.g. recorded as skipped) is a duplicate: acked.
                must_fail = (why_not != _SKIPPED or self._platform is Platform.V5) and not why_not.startswith("phase ")
                if must_fail and failed is None:
                    findings.append(Finding(Property.OTHER, f"refused body acknowledged, not failed ({why_not})"))
                continue
            submission_id = _canonical(json.loads(body).get("submissionId")) or json.loads(body).get("submissionId")
            for run in new_runs:
                if run[0] != submission_id or run[1] not in expected:
                    findings.append(
                        Finding(Property.ACTED, "RunTask for a run the message did not ask for", f"phase {run[1]}")
                    )
            for phase in sorted(expected):
                if (submission_id, phase) not in launched_before and (submission_id, phase) not in new_runs:
                    reason = failed.reason_code if failed is not None else "acknowledged"
                    findings.append(Finding(Property.OTHER, f"valid body's {phase} run not launched ({reason})"))
            launched_before.update(new_runs)
        per_run = Counter(_run_of(request) for request in world.launcher.requests)
        for calls in per_run.values():
            if calls > 1:
                findings.append(Finding(Property.ACTED, "RunTask more than once for a run", f"{calls} calls"))
        if any(CANARY_TOKEN in str(finding) for finding in findings):
            findings.append(Finding(Property.OTHER, "token in a finding"))
        return findings


_SKIPPED = "skipReason set"


def _run_of(request: Any) -> tuple[str, str]:
    """(submission, phase) a RunTask request is for, read from its overrides as the completion function does."""
    overrides = request.kwargs["overrides"]["containerOverrides"][0]
    env = {pair["name"]: pair["value"] for pair in overrides.get("environment", [])}
    return str(env.get("MM_SUBMISSION_ID", request.client_token)), str(env.get("MM_PHASE"))


# ---------------------------------------------------------------- completion
def _completion_capacity_settings() -> dict[str, Any]:
    return {"capacity_table_name": CAPACITY_TABLE, "capacity_parameter_name": _capacity_parameter()}


def _completion_capacity(status_table: str, clock: Any) -> dict[str, Any]:
    """The completion function's capacity ports on the fuzz tables: the real store, roomy caps (no SSM)."""
    from mm_capacity.store import CapacityStore
    from mm_contracts.models.capacity import EnvironmentCapacity

    caps = EnvironmentCapacity.model_validate(ROOMY_CAPACITY)
    store = CapacityStore(CAPACITY_TABLE, status_table, clock=clock)
    return {"capacity_store": store, "environment_capacity": lambda: caps}


@dataclass
class _FakeEcs:
    """DescribeTasks as ECS answers it: tags only for the task the pipeline launched."""

    calls: list[dict[str, Any]] = field(default_factory=list)

    def describe_tasks(self, **kwargs: Any) -> dict[str, Any]:
        from mm_contracts.models.task import TaskTag

        self.calls.append(kwargs)
        tasks = [
            {
                "taskArn": SEEDED_TASK_ARN,
                "clusterArn": CLUSTER_ARN,
                "lastStatus": "STOPPED",
                "tags": [
                    {"key": TaskTag.SUBMISSION_ID.value, "value": SEEDED_SUBMISSION},
                    {"key": TaskTag.CHALLENGE_ID.value, "value": KNOWN_CHALLENGE},
                ],
            }
            for arn in kwargs.get("tasks", [])
            if arn == SEEDED_TASK_ARN
        ]
        return {"tasks": tasks, "failures": [] if tasks else [{"reason": "MISSING"}]}

    def stop_task(self, **kwargs: Any) -> dict[str, Any]:
        return {"task": {"taskArn": kwargs.get("task")}}


def _reviews_of_seeded(api: Any) -> int:
    return sum(1 for review in api.reviews if review.get("submissionId") == SEEDED_SUBMISSION)


def _may_act(event: Any) -> bool:
    """True for the launched task's own STOPPED event, the only one allowed to change its item."""
    from mm_contracts.models.task import TaskEnv
    from mm_contracts.names import started_by_prefix

    if not isinstance(event, dict) or event.get("source") != "aws.ecs":
        return False
    if event.get("detail-type") != "ECS Task State Change":
        return False
    detail = event.get("detail")
    if not isinstance(detail, dict) or detail.get("lastStatus") != "STOPPED":
        return False
    if detail.get("taskArn") != SEEDED_TASK_ARN:
        return False
    started = detail.get("startedBy")
    if not isinstance(started, str) or not started.startswith(started_by_prefix(ENVIRONMENT)):
        return False
    overrides = detail.get("overrides")
    containers = overrides.get("containerOverrides") if isinstance(overrides, dict) else None
    values = [
        pair.get("value")
        for override in (containers if isinstance(containers, list) else [])
        if isinstance(override, dict) and isinstance(override.get("environment"), list)
        for pair in override["environment"]
        if isinstance(pair, dict) and pair.get("name") == TaskEnv.SUBMISSION_ID.value
    ]
    named = values[0] if values else None
    # Without the variable the service identifies the task by its tags (ours for the seeded task).
    return named in (None, "") or _canonical(named) == SEEDED_SUBMISSION


class CompletionChecker:
    """`parse_event` + `CompletionService.process` with the real StatusStore on moto; API and config are fakes.

    Before every input one submission is LAUNCHED (as the challenge processor leaves it); it is the only one
    the pipeline launched, so it is the only item that may change and the only submission that may be reviewed.
    """

    name = "completion"

    def __init__(self, table: str) -> None:
        self._table = table
        self._dirty = True  # the table holds items of an earlier input (each check empties it when done)

    def units(self, events: list[dict[str, Any]]) -> int:
        return len(events)

    def _service(self) -> tuple[Any, Any, Any]:
        from completion_lambda.handler import CompletionDependencies
        from completion_lambda.observability import RecordingMetricsSink
        from mm_adapters.status_store import StatusStore
        from mm_contracts.settings import CompletionSettings
        from tests.conftest import Clock
        from tests.unit.completion.fakes import FakeConfigSource, FakeReviewApi, challenge_config

        clock = Clock()
        store = StatusStore(self._table, clock=clock)
        api = FakeReviewApi()
        settings = CompletionSettings(
            environment_name=ENVIRONMENT,
            status_table_name=self._table,
            challenge_config_parameter_prefix="/mm-processor/challenges",
            submission_api_url="http://127.0.0.1:9/v5",
            **_completion_capacity_settings(),
        )
        deps = CompletionDependencies(
            settings,
            **_completion_capacity(self._table, clock),
            store=store,
            config_source=FakeConfigSource(challenge_config(challenge_id=KNOWN_CHALLENGE, report_on_success=True)),
            review_api=api,
            ecs=_FakeEcs(),
            metrics_sink=RecordingMetricsSink(),
        )
        return deps.service(), store, api

    @staticmethod
    def _seed(store: Any) -> None:
        from mm_contracts.models.routed import RoutedSubmission
        from tests.fuzz.strategies import routed_body

        submission = RoutedSubmission.model_validate(routed_body(SEEDED_SUBMISSION))
        claim = store.claim_launch(submission, phase=SEEDED_PHASE, scorer_type="example-scorer", lease_seconds=60)
        assert claim.granted
        assert store.mark_launched(
            SEEDED_RUN,
            attempt=claim.attempt,
            task_arn=SEEDED_TASK_ARN,
            cluster_arn=CLUSTER_ARN,
            timeout_seconds=3600,
        )

    def check(self, events: list[dict[str, Any]]) -> list[Finding]:
        from completion_lambda.observability import logger

        with quiet(logger):
            return self._check(events)

    def _check(self, events: list[dict[str, Any]]) -> list[Finding]:
        from completion_lambda.handler import InvalidEventError, parse_event

        if self._dirty:
            _empty_table(self._table)
        self._dirty = True
        service, store, api = self._service()
        self._seed(store)
        findings: list[Finding] = []
        after = store.get(SEEDED_RUN)
        for event in events:
            before = after
            reviews_before = _reviews_of_seeded(api)
            try:
                parsed = parse_event(event)
            except InvalidEventError as error:
                if CANARY_TOKEN in str(error):
                    findings.append(Finding(Property.OTHER, "token in the InvalidEventError message"))
                parsed = None
            except Exception as error:
                findings.append(_escaped(error))
                parsed = None
            if parsed is not None:
                try:
                    service.process(parsed)
                except Exception as error:
                    findings.append(_escaped(error))
                    if CANARY_TOKEN in str(error):
                        findings.append(Finding(Property.OTHER, "token in an escaped exception"))
            if parsed is not None:  # nothing was called: nothing changed
                after = store.get(SEEDED_RUN)
            changed = (before is None) != (after is None) or (
                before is not None
                and after is not None
                and (before.state, before.report_status) != (after.state, after.report_status)
            )
            if not _may_act(event) and (changed or _reviews_of_seeded(api) > reviews_before):
                findings.append(
                    Finding(Property.ACTED, "launched submission acted on by an event that is not its task's")
                )
        items = _empty_table(self._table)
        self._dirty = False
        for item in items:
            submission_id = item["submissionId"].get("S", "")
            if submission_id != SEEDED_SUBMISSION:
                findings.append(
                    Finding(
                        Property.ACTED, "status item created for a submission never launched", _safe(submission_id, 60)
                    )
                )
        for review in api.reviews:
            if review.get("submissionId") != SEEDED_SUBMISSION:
                findings.append(Finding(Property.ACTED, "review posted for a submission never launched"))
        if _reviews_of_seeded(api) > 1:
            findings.append(Finding(Property.ACTED, "more than one review for the launched submission"))
        return findings


# ---------------------------------------------------------------- completion, v6 (issue 10)
@dataclass
class _FakeSummations:
    """review-api-v6's summations as the reporter uses them (list by submission and phase, create, patch)."""

    summations: list[dict[str, Any]] = field(default_factory=list)
    writes: list[dict[str, Any]] = field(default_factory=list)  # every created or patched body, as sent

    def list_summations(self, *, submission_id: str, phase: ScoringPhase) -> list[dict[str, Any]]:
        return [dict(s) for s in self.summations if s["submissionId"] == submission_id and s.get(phase.summation_flag)]

    def create_summation(self, body: Any) -> dict[str, Any]:
        wire = body.to_wire()
        self.writes.append(wire)
        created = {"id": f"sum-{len(self.summations) + 1}", "createdAt": "2026-12-01T10:00:00Z", **wire}
        self.summations.append(created)
        return created

    def patch_summation(self, summation_id: str, body: Any) -> dict[str, Any]:
        target = next(s for s in self.summations if s["id"] == summation_id)
        wire = body.to_wire()
        self.writes.append({"submissionId": target["submissionId"], **wire, "patched": summation_id})
        target.update(wire)
        return target


class _FakeV6Ecs(_FakeEcs):
    """DescribeTasks for the launched v6 task: its tags name its submission, challenge and phase."""

    def describe_tasks(self, **kwargs: Any) -> dict[str, Any]:
        from mm_contracts.models.task import TaskTag

        self.calls.append(kwargs)
        tags = {
            TaskTag.SUBMISSION_ID.value: V6_LAUNCHED_SUBMISSION,
            TaskTag.CHALLENGE_ID.value: KNOWN_CHALLENGE,
            TaskTag.PHASE.value: V6_LAUNCHED_PHASE.value,
        }
        tasks = [
            {"taskArn": arn, "lastStatus": "STOPPED", "tags": [{"key": k, "value": v} for k, v in tags.items()]}
            for arn in kwargs.get("tasks", [])
            if arn == V6_TASK_ARN
        ]
        return {"tasks": tasks, "failures": [] if tasks else [{"reason": "MISSING"}]}


def _first_env(event: dict[str, Any], name: str) -> Any:
    """The first value of `name` across the container overrides, as the completion function reads it."""
    detail = event.get("detail")
    overrides = detail.get("overrides") if isinstance(detail, dict) else None
    containers = overrides.get("containerOverrides") if isinstance(overrides, dict) else None
    for override in containers if isinstance(containers, list) else []:
        if isinstance(override, dict) and isinstance(override.get("environment"), list):
            for pair in override["environment"]:
                if isinstance(pair, dict) and pair.get("name") == name:
                    return pair.get("value")
    return None


def _may_act_on_launched(event: Any) -> bool:
    """The launched v6 run's own task's STOPPED event: `_may_act`'s rules, its task, its nanoid and its phase
    (from the overrides, or the task's tags when the overrides name no submission)."""
    from mm_contracts.models.task import TaskEnv
    from mm_contracts.names import started_by_prefix

    if not isinstance(event, dict) or event.get("source") != "aws.ecs":
        return False
    if event.get("detail-type") != "ECS Task State Change":
        return False
    detail = event.get("detail")
    if not isinstance(detail, dict) or detail.get("lastStatus") != "STOPPED" or detail.get("taskArn") != V6_TASK_ARN:
        return False
    started = detail.get("startedBy")
    if not isinstance(started, str) or not started.startswith(started_by_prefix(ENVIRONMENT)):
        return False
    named = _first_env(event, TaskEnv.SUBMISSION_ID.value)
    phase = _first_env(event, TaskEnv.PHASE.value)
    if named in (None, ""):  # identified by the task's tags, which name the launched run
        return phase in (None, "", V6_LAUNCHED_PHASE.value)
    return named == V6_LAUNCHED_SUBMISSION and phase == V6_LAUNCHED_PHASE.value


def _may_act_on_skipped(event: Any) -> bool:
    """The only input that may report the skipped run: a report-due event naming exactly its run id."""
    if not isinstance(event, dict):
        return False
    detail = event.get("detail")
    return (
        event.get("source") == "mm-processor"
        and event.get("detail-type") == "Run Report Due"
        and isinstance(detail, dict)
        and set(detail) == {"runId"}
        and detail["runId"] == V6_SKIPPED_RUN
    )


_SEEDED_V6_RUNS = {
    V6_LAUNCHED_RUN: (V6_LAUNCHED_SUBMISSION, V6_LAUNCHED_PHASE),
    V6_SKIPPED_RUN: (V6_SKIPPED_SUBMISSION, V6_SKIPPED_PHASE),
}


def _run_of_write(write: dict[str, Any]) -> str | None:
    """The seeded run a summation write is for (None: none of them), by submission and phase flag."""
    for run, (submission_id, phase) in _SEEDED_V6_RUNS.items():
        if write.get("submissionId") == submission_id and (write.get(phase.summation_flag) or "patched" in write):
            return run
    return None


class V6CompletionChecker:
    """`parse_event` + `CompletionService.process` for a v6 challenge (EXAMPLE and PROVISIONAL phases), the real
    StatusStore on moto, a fake review-api-v6. Before every input one run is LAUNCHED and one recorded as skipped
    (as the processor leaves them); they are the only runs that may change or get a summation."""

    name = "completion v6"

    def __init__(self, table: str) -> None:
        self._table = table
        self._dirty = True

    def units(self, events: list[dict[str, Any]]) -> int:
        return len(events)

    def _service(self) -> tuple[Any, Any, _FakeSummations]:
        from completion_lambda.handler import CompletionDependencies
        from completion_lambda.observability import RecordingMetricsSink
        from mm_adapters.status_store import StatusStore
        from mm_contracts.models.phase import PhaseConfig
        from mm_contracts.settings import CompletionSettings
        from tests.conftest import Clock
        from tests.unit.completion.fakes import FakeConfigSource, FakeReviewApi, challenge_config

        clock = Clock()
        store = StatusStore(self._table, clock=clock)
        summations = _FakeSummations()
        config = challenge_config(
            challenge_id=KNOWN_CHALLENGE,
            platform=Platform.V6,
            scorecard_id="Sc0rEcArD-v6_1",
            phases=(PhaseConfig(phase=ScoringPhase.EXAMPLE), PhaseConfig(phase=ScoringPhase.PROVISIONAL)),
        )
        settings = CompletionSettings(
            environment_name=ENVIRONMENT,
            status_table_name=self._table,
            challenge_config_parameter_prefix="/mm-processor/challenges",
            review_api_url="http://127.0.0.1:9/v6",
            **_completion_capacity_settings(),
        )
        deps = CompletionDependencies(
            settings,
            **_completion_capacity(self._table, clock),
            store=store,
            config_source=FakeConfigSource(config),
            review_api=FakeReviewApi(),
            summations_api=summations,
            ecs=_FakeV6Ecs(),
            metrics_sink=RecordingMetricsSink(),
        )
        return deps.service(), store, summations

    @staticmethod
    def _seed(store: Any) -> None:
        from mm_contracts.models.routed import RoutedSubmission
        from tests.fuzz.strategies import v6_routed_body

        launched = RoutedSubmission.model_validate(v6_routed_body(V6_LAUNCHED_SUBMISSION))
        claim = store.claim_launch(launched, phase=V6_LAUNCHED_PHASE, scorer_type="example-scorer", lease_seconds=60)
        assert claim.granted
        assert store.mark_launched(
            V6_LAUNCHED_RUN, attempt=claim.attempt, task_arn=V6_TASK_ARN, cluster_arn=CLUSTER_ARN, timeout_seconds=3600
        )
        skipped = RoutedSubmission.model_validate(
            v6_routed_body(V6_SKIPPED_SUBMISSION, skip_reason="challenge_inactive")
        )
        assert store.record_skipped(
            skipped, phase=V6_SKIPPED_PHASE, scorer_type="example-scorer", reason="challenge_inactive"
        )

    def check(self, events: list[dict[str, Any]]) -> list[Finding]:
        from completion_lambda.observability import logger

        with quiet(logger):
            return self._check(events)

    def _check(self, events: list[dict[str, Any]]) -> list[Finding]:
        from completion_lambda.handler import InvalidEventError, parse_event

        if self._dirty:
            _empty_table(self._table)
        self._dirty = True
        service, store, api = self._service()
        self._seed(store)
        findings: list[Finding] = []
        may_act = {V6_LAUNCHED_RUN: _may_act_on_launched, V6_SKIPPED_RUN: _may_act_on_skipped}
        after = {run: store.get(run) for run in _SEEDED_V6_RUNS}
        for event in events:
            before = dict(after)
            writes_before = Counter(_run_of_write(write) for write in api.writes)
            try:
                parsed = parse_event(event)
            except InvalidEventError as error:
                if CANARY_TOKEN in str(error):
                    findings.append(Finding(Property.OTHER, "token in the InvalidEventError message"))
                parsed = None
            except Exception as error:
                findings.append(_escaped(error))
                parsed = None
            if parsed is not None:
                try:
                    service.process(parsed)
                except Exception as error:
                    findings.append(_escaped(error))
                    if CANARY_TOKEN in str(error):
                        findings.append(Finding(Property.OTHER, "token in an escaped exception"))
                after = {run: store.get(run) for run in _SEEDED_V6_RUNS}
            writes_after = Counter(_run_of_write(write) for write in api.writes)
            for run, allowed in may_act.items():
                old, new = before[run], after[run]
                changed = (old is None) != (new is None) or (
                    old is not None
                    and new is not None
                    and (old.state, old.report_status) != (new.state, new.report_status)
                )
                if not allowed(event) and (changed or writes_after[run] > writes_before[run]):
                    findings.append(Finding(Property.ACTED, f"run {run} acted on by an input that is not its own"))
        items = _empty_table(self._table)
        self._dirty = False
        for item in items:
            item_run = str(item["runId"].get("S", ""))
            if item_run not in _SEEDED_V6_RUNS:
                findings.append(
                    Finding(Property.ACTED, "status item created for a run never recorded", _safe(item_run, 60))
                )
        per_run = Counter(_run_of_write(write) for write in api.writes)
        for written_run, writes in per_run.items():
            if written_run is None:
                findings.append(Finding(Property.ACTED, "summation written for a run the pipeline never recorded"))
            elif writes > 1:
                findings.append(Finding(Property.ACTED, f"{writes} summation writes for run {written_run}"))
        if CANARY_TOKEN in json.dumps(api.writes, default=str):
            findings.append(Finding(Property.OTHER, "token in a summation"))
        return findings
