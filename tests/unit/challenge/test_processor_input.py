"""challenge_lambda.processor `_parse`: the processor validates what it acts on (decision 076).

A queue can hand the processor a body the router never wrote (a hand-sent message, a redrive of an old
one, a compromised publisher). Before anything is claimed or launched, the body must be a RoutedSubmission
whose memberId is in range and whose URL passes the same policy as the router's (mm_contracts.url_policy),
with the allow list from ALLOWED_URL_HOSTS. A refusal is a permanent message error: RecordFailed, a
LaunchFailures count with its reason, no status item, no RunTask; on the last receive the message goes
to the DLQ like any InvalidMessage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from challenge_lambda.processor import ChallengeProcessor, FailureReason, InboundMessage, RecordFailed, RecordOutcome
from mm_adapters.status_store import StatusStore
from mm_contracts.metric_names import Metric
from mm_contracts.models.routed import MAX_MEMBER_ID, RoutedSubmission
from mm_contracts.settings import ChallengeProcessorSettings
from tests.conftest import Clock
from tests.fakes.metrics import RecordingMetrics
from tests.unit.challenge.helpers import (
    FakeLauncher,
    Fakes,
    config_document,
    processor_env,
    routed_submission,
)

ALLOWED_HOSTS = "topcoder-submissions.s3.amazonaws.com,.topcoder-dev.com"
MAX_RECEIVE = 3


@dataclass
class Processor:
    processor: ChallengeProcessor
    store: StatusStore
    launcher: FakeLauncher
    metrics: RecordingMetrics

    def deliver(self, body: str, *, receive_count: int = 1) -> RecordOutcome:
        return self.processor.process(InboundMessage(message_id="m-1", body=body, receive_count=receive_count))


@pytest.fixture
def world(status_table: str, capacity_table: str, clock: Clock) -> Processor:
    settings = ChallengeProcessorSettings.from_env(
        processor_env(status_table, MAX_RECEIVE_COUNT=str(MAX_RECEIVE), ALLOWED_URL_HOSTS=ALLOWED_HOSTS)
    )
    fakes = Fakes.with_config(config_document())
    processor = fakes.processor(settings, clock)
    return Processor(processor, StatusStore(status_table, clock=clock), fakes.launcher, fakes.metrics)


def body_with(submission: RoutedSubmission, **wire_overrides: object) -> str:
    """The submission's JSON with some wire fields replaced (what a hostile or stale queue message holds)."""
    document = json.loads(submission.to_json())
    document.update(wire_overrides)
    return json.dumps(document)


def test_settings_read_the_routers_allow_list_variable() -> None:
    names = ChallengeProcessorSettings.env_var_names()
    assert "ALLOWED_URL_HOSTS" in names
    assert "ALLOWED_URL_HOSTS" in ChallengeProcessorSettings.required_env_var_names()


REFUSED_URLS = [
    ("file:///etc/passwd", "url_not_https"),
    ("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "url_not_https"),
    ("https://169.254.169.254/latest/meta-data/", "url_host_ip_literal"),
    ("https://2852039166/latest/meta-data/", "url_host_ip_literal"),
    ("https://0xa9.0xfe.0xa9.0xfe/latest/", "url_host_ip_literal"),
    ("https://[fd00:ec2::254]/latest/", "url_invalid"),
    ("https://localhost/solution.zip", "url_host_reserved"),
    ("https://metadata.google.internal/computeMetadata/v1/", "url_host_reserved"),
    ("https://user:secret@topcoder-submissions.s3.amazonaws.com/a.zip", "url_has_userinfo"),
    ("https://topcoder-submissions.s3.amazonaws.com:8443/a.zip", "url_port_not_allowed"),
    ("https://evil.example.net/solution.zip", "url_host_not_allowed"),
    ("https://topcoder-submissions.s3.amazonaws.com.evil.net/a.zip", "url_host_not_allowed"),
    ("https://topcoder-submissions.s3.amazonaws.com\\@evil.net/a.zip", "url_invalid"),
]


@pytest.mark.parametrize(("url", "refusal"), REFUSED_URLS)
def test_a_url_outside_the_policy_is_refused_before_claim_or_runtask(world: Processor, url: str, refusal: str) -> None:
    submission = routed_submission()

    with pytest.raises(RecordFailed) as failed:
        world.deliver(body_with(submission, url=url))

    assert failed.value.reason_code == FailureReason.URL_NOT_ALLOWED.value == "UrlNotAllowed"
    assert refusal in failed.value.detail
    assert url not in failed.value.detail  # the URL itself (maybe with credentials) is never echoed
    assert world.launcher.requests == []
    assert world.store.get_runs(submission.submission_id) == []  # nothing claimed
    assert world.metrics.reasons(Metric.LAUNCH_FAILURES) == {"UrlNotAllowed": 1}


def test_a_refused_url_is_dead_lettered_on_its_last_receive(world: Processor) -> None:
    submission = routed_submission()
    body = body_with(submission, url="file:///proc/self/environ")

    for receive in range(1, MAX_RECEIVE + 1):
        with pytest.raises(RecordFailed):
            world.deliver(body, receive_count=receive)

    assert world.metrics.total(Metric.DEAD_LETTERED) == 1  # SQS moves it to the DLQ after the last receive
    assert world.metrics.reasons(Metric.LAUNCH_FAILURES) == {"UrlNotAllowed": MAX_RECEIVE}
    assert world.launcher.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "https://topcoder-submissions.s3.amazonaws.com/mm/solution.zip",
        "https://files.topcoder-dev.com/mm/solution.zip",
        "https://TOPCODER-SUBMISSIONS.s3.amazonaws.com.:443/mm/solution.zip",
    ],
)
def test_an_allowed_url_is_launched(world: Processor, url: str) -> None:
    submission = routed_submission()

    outcome = world.deliver(body_with(submission, url=url))

    assert outcome is RecordOutcome.LAUNCHED
    assert len(world.launcher.requests) == 1


def test_a_member_id_beyond_64_bits_is_an_invalid_message_not_a_claim_failure(world: Processor) -> None:
    submission = routed_submission()
    forty_digits = int("9" * 40)

    with pytest.raises(RecordFailed) as failed:
        world.deliver(body_with(submission, memberId=forty_digits))

    assert failed.value.reason_code == FailureReason.INVALID_MESSAGE.value
    assert "memberId" in failed.value.detail
    assert world.store.get_runs(submission.submission_id) == []
    assert world.launcher.requests == []
    assert world.metrics.reasons(Metric.LAUNCH_FAILURES) == {"InvalidMessage": 1}


def test_the_largest_member_id_is_launched(world: Processor) -> None:
    submission = routed_submission()

    outcome = world.deliver(body_with(submission, memberId=MAX_MEMBER_ID))

    assert outcome is RecordOutcome.LAUNCHED
    [record] = world.store.get_runs(submission.submission_id)
    assert record is not None
    assert record.member_id == MAX_MEMBER_ID
