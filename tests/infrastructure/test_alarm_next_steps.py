"""Every alarm the stacks create tells the operator which `mm-processor` command to run next.

The synthesized templates of the example and of the cached variants (mTLS with the certificate monitor, the
scorer-token refresher, the two-platform staging) are read, never synthesized again: every test here runs on one
xdist worker (`xdist_group("synth")`) and shares `tests.synth`'s per-process cache.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

import pytest
from aws_cdk import aws_sns as sns

from infrastructure.mm_constructs.alarms import MAX_ALARM_DESCRIPTION, AlarmFactory
from operator_tools.cli import COMMANDS, SMOKE_COMMAND, _parser
from tests.infrastructure.templates import all_resources
from tests.synth import Synthesized, synth_environment, synth_example, synth_scorer_token_variant, synth_variant

pytestmark = pytest.mark.xdist_group("synth")

NEXT = " Next: mm-processor "
KNOWN_COMMANDS = {command.name for command in COMMANDS} | {SMOKE_COMMAND}
# One command as an alarm writes it (`AlarmFactory.cli`): `mm-processor <command ...> --env <env>`.
COMMAND_PATTERN = re.compile(r"mm-processor (?P<words>.+?) --env (?P<env>[a-z0-9-]+)")
# What the text leaves for the operator to fill in, and a value the parser accepts in its place.
PLACEHOLDERS = {
    "<challengeId>": "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601",
    "<submissionId>": "sub-1",
    "N": "5",
    "TEXT": "why",
}

SYNTHS: dict[str, Callable[[], Synthesized]] = {
    "example": synth_example,
    "mtls": synth_variant,
    "scorer-token": synth_scorer_token_variant,
    "staging": lambda: synth_environment("staging"),
}


def alarm_descriptions(synthesized: Synthesized) -> dict[str, Any]:
    return {
        f"{stack}/{logical_id}": alarm["Properties"].get("AlarmDescription")
        for stack, logical_id, alarm in all_resources(synthesized, "AWS::CloudWatch::Alarm")
    }


@pytest.fixture(scope="module", params=sorted(SYNTHS))
def synthesized(request: pytest.FixtureRequest) -> Synthesized:
    return SYNTHS[request.param]()


def test_every_alarm_names_an_operator_command_to_run_next(synthesized: Synthesized) -> None:
    environment = synthesized.config.environment
    descriptions = alarm_descriptions(synthesized)
    assert descriptions
    for alarm, description in descriptions.items():
        assert isinstance(description, str), f"{alarm}: a plain-text description"
        assert len(description) <= MAX_ALARM_DESCRIPTION, f"{alarm}: {len(description)} characters"
        # `mm-processor health` finds the environment's alarms by this prefix
        assert description.startswith(f"[mm-processor {environment}] "), alarm
        assert NEXT in description, f"{alarm}: {description}"
        after = description.split(NEXT, 1)[1]
        assert after.split()[0] in KNOWN_COMMANDS, f"{alarm}: {description}"


def test_every_command_an_alarm_names_parses_for_the_alarms_environment(synthesized: Synthesized) -> None:
    parser = _parser([])
    environment = synthesized.config.environment
    for alarm, description in alarm_descriptions(synthesized).items():
        commands = list(COMMAND_PATTERN.finditer(description.split(" Next: ", 1)[1]))
        assert commands, f"{alarm}: {description}"
        for command in commands:
            assert command["env"] == environment, f"{alarm}: {command[0]}"
            words = [PLACEHOLDERS.get(word, word) for word in command["words"].split()]
            assert words[0] in KNOWN_COMMANDS, f"{alarm}: {command[0]}"
            args = parser.parse_args([*words, "--env", environment])  # exits (fails the test) on a wrong one
            assert args.command == words[0]


def next_step_of(synthesized: Synthesized, logical_id_part: str) -> list[str]:
    return [
        description.split(" Next: ", 1)[1]
        for alarm, description in alarm_descriptions(synthesized).items()
        if logical_id_part in alarm
    ]


def test_each_alarm_kind_names_its_own_next_command() -> None:
    synthesized = synth_example()
    env = f"--env {synthesized.config.environment}"
    for challenge in synthesized.config.challenges:
        cid = challenge.challenge_id
        (health,) = [
            d
            for d in alarm_descriptions(synthesized).values()
            if d.startswith(f"[mm-processor example] challenge {cid}:")
        ]
        step = health.split(" Next: ", 1)[1]
        assert step.startswith(f"mm-processor dlq show {cid} {env}")
        assert step.index("dlq show") < step.index(f"mm-processor health {env}") < step.index("dlq redrive")
    (fanout,) = next_step_of(synthesized, "SubscriptionDlqAlarm")
    assert fanout.startswith(f"mm-processor dlq show fanout {env}")
    assert "dlq redrive fanout" in fanout
    (completion,) = next_step_of(synthesized, "CompletionDlqAlarm")
    assert completion.startswith(f"mm-processor dlq show completion {env}")
    assert "dlq redrive completion" in completion
    (rule,) = next_step_of(synthesized, "RuleFailedInvocationsAlarm")
    assert rule.startswith(f"mm-processor dlq show completion {env}")
    (lag,) = next_step_of(synthesized, "OffsetLagAlarm")
    assert lag.startswith(f"mm-processor health {env}")
    (failures,) = next_step_of(synthesized, "FailureRecordsAlarm")
    assert failures.index(f"mm-processor dlq list {env}") < failures.index("dlq replay-router")
    (full,) = next_step_of(synthesized, "CapacityFullAlarm")
    assert full.startswith(f"mm-processor caps show {env}")
    assert "caps set --environment --max-running N" in full
    (oldest,) = next_step_of(synthesized, "OldestWaitAlarm")
    assert oldest.index(f"mm-processor caps show {env}") < oldest.index("mm-processor queue <challengeId>")
    (launch,) = next_step_of(synthesized, "LaunchFailuresAlarm")
    assert launch.startswith(f"mm-processor runs <challengeId> --state LAUNCH_FAILED {env}")
    (tasks,) = next_step_of(synthesized, "TasksFailedAlarm")
    assert tasks.startswith(f"mm-processor runs <challengeId> --state FAILED {env}")
    (reports,) = next_step_of(synthesized, "ReportFailuresAlarm")
    assert reports.startswith(f"mm-processor dlq show completion {env}")
    (rejected,) = next_step_of(synthesized, "RecordsRejectedAlarm")
    assert rejected.startswith(f"mm-processor health {env}")
    assert "mm-example-router-audit" in rejected
    (orphans,) = next_step_of(synthesized, "OrphanTasksStoppedAlarm")
    assert orphans.index(f"mm-processor health {env}") < orphans.index("mm-processor status <submissionId>")
    # A run the sweeper gave up on is off its index, so `health` cannot list it: the alarm starts at `status`.
    for gave_up in ("ReconcileGaveUpAlarm", "ReportRetryGaveUpAlarm"):
        (step,) = next_step_of(synthesized, gave_up)
        assert step.startswith(f"mm-processor status <submissionId> {env}")
        assert "mm-processor dlq show completion" in step
        assert "mm-processor health" not in step


def test_function_alarms_name_the_functions_log_group() -> None:
    descriptions = [
        d
        for d in alarm_descriptions(synth_example()).values()
        if " function errors." in d or " function throttled." in d
    ]
    assert len(descriptions) == 2 * 3  # router, completion, timeout sweeper
    for description in descriptions:
        step = description.split(" Next: ", 1)[1]
        assert step.startswith("mm-processor health --env example")
        assert re.search(r"log group /aws/lambda/mm-example-[a-z-]+", step), description


def test_the_expiry_gauges_name_what_their_decisions_say_to_do() -> None:
    (certificate,) = next_step_of(synth_variant(), "CertificateMonitorExpiryAlarm")
    assert certificate.startswith("mm-processor health --env example")
    assert "kafka-client-certificate" in certificate
    assert "/aws/lambda/mm-example-certificate-monitor" in certificate
    (token,) = next_step_of(synth_scorer_token_variant(), "ScorerTokenExpiryAlarm")
    assert token.startswith("mm-processor health --env example")
    assert "/aws/lambda/mm-example-scorer-token-refresher" in token


def factory() -> AlarmFactory:
    return AlarmFactory(cast(sns.ITopic, object()), "example")  # `describe` needs no topic


def test_a_description_over_cloudwatchs_limit_is_refused_at_synthesis() -> None:
    assert len(factory().describe("x" * 900, factory().cli("health"))) <= MAX_ALARM_DESCRIPTION
    with pytest.raises(ValueError, match="at most 1024"):
        factory().describe("x" * 1000, factory().cli("health"))


def test_a_next_step_must_start_with_an_operator_command() -> None:
    with pytest.raises(ValueError, match="next step"):
        factory().describe("the DLQ is not empty", "inspect and redrive")
    assert factory().describe("the DLQ is not empty", factory().cli("dlq show fanout")) == (
        "[mm-processor example] the DLQ is not empty. Next: mm-processor dlq show fanout --env example"
    )
