"""The challenge processor's fuzz checker: `ChallengeProcessor.process` with the real StatusStore on a moto table;
SSM, ECS and tokens are fakes.

Properties: RunTask only for a valid body of this challenge with an allowed URL, at most once per run; every
other body ends in `RecordFailed` with a reason, never another exception; a valid body's runs are launched, but for
a run the status table holds already (launched or recorded as skipped by an earlier delivery: one run per
submission and phase). The body's submission id is read as the contract reads it (`_named_submission`).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from mm_contracts.models.phase import Platform, ScoringPhase
from tests.fuzz.findings import Finding, Property, escaped
from tests.fuzz.moto_tables import (
    CAPACITY_TABLE,
    ROOMY_CAPACITY,
    ROOMY_CHALLENGE_CAPACITY,
    capacity_parameter,
    empty_tables,
)
from tests.fuzz.oracles import canonical_uuid, routed_refused_because
from tests.fuzz.strategies import ALLOWED_URL_HOSTS, CANARY_TOKEN, ENVIRONMENT, KNOWN_CHALLENGE, SEEDED_PHASE

_SKIPPED = "skipReason set"


@dataclass
class _ProcessorWorld:
    processor: Any
    launcher: Any


class ProcessorChecker:
    """`platform` is the challenge's: v5 (one PROVISIONAL run per submission) or v6 (EXAMPLE and PROVISIONAL on
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
        self.launched: list[tuple[str, str]] = []

    def _config_document(self) -> dict[str, Any]:
        from tests.unit.challenge.helpers import config_document, v6_config_document

        if self._platform is Platform.V5:
            return {**config_document(challenge_id=KNOWN_CHALLENGE), "capacity": ROOMY_CHALLENGE_CAPACITY}
        return v6_config_document(
            challengeId=KNOWN_CHALLENGE,
            phases=[
                {"phase": "EXAMPLE", "startSeed": 1, "numberOfTests": 10, "timeoutSeconds": 600},
                {"phase": "PROVISIONAL", "startSeed": 1001, "numberOfTests": 100, "timeoutSeconds": 2400},
            ],
            capacity=ROOMY_CHALLENGE_CAPACITY,
        )

    def _world(self) -> _ProcessorWorld:
        from challenge_lambda.wiring import ChallengeDependencies
        from mm_contracts.settings import ChallengeProcessorSettings
        from tests.fakes.clock import VirtualClock
        from tests.fakes.metrics import RecordingMetrics
        from tests.unit.challenge.helpers import (
            PARAMETER_NAME,
            FakeLauncher,
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
            "CAPACITY_PARAMETER_NAME": capacity_parameter(),
            "CHALLENGE_QUEUE_URL": f"https://sqs.us-east-1.amazonaws.com/123456789012/mm-fuzz-{KNOWN_CHALLENGE}",
        }
        if "allowed_url_hosts" in ChallengeProcessorSettings.model_fields:
            env["ALLOWED_URL_HOSTS"] = ",".join(ALLOWED_URL_HOSTS)
        ssm = FakeSsm()
        ssm.put(PARAMETER_NAME, self._config_document())
        ssm.put(capacity_parameter(), ROOMY_CAPACITY)
        launcher = FakeLauncher()
        clock = VirtualClock()
        logger, _ = captured_logger()
        logger.setLevel(logging.CRITICAL)  # its own logger: thousands of deliveries, nothing to read in them
        tokens = FakeTokenProvider(token=CANARY_TOKEN)
        processor = ChallengeDependencies(
            ChallengeProcessorSettings.from_env(env),
            metrics=RecordingMetrics(),
            logger=logger,
            ssm_client=ssm,
            launcher=launcher,  # type: ignore[arg-type]
            token_provider_factory=lambda: tokens,
            clock=clock,
            config_clock=clock,
            sleep=clock.advance,  # pacing waits in the fuzz clock's time, never the machine's
        ).processor
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
        empty_tables(self._table)
        world = self._world()
        findings: list[Finding] = []
        launched_before: set[tuple[str, str]] = set()
        for number, (body, receive_count) in enumerate(deliveries):
            launched_before.update(self._deliver(world, number, body, receive_count, launched_before, findings))
        self.launched = [_run_of(request) for request in world.launcher.requests]  # what the last check launched
        per_run = Counter(self.launched)
        for calls in per_run.values():
            if calls > 1:
                findings.append(Finding(Property.ACTED, "RunTask more than once for a run", f"{calls} calls"))
        if any(CANARY_TOKEN in str(finding) for finding in findings):
            findings.append(Finding(Property.OTHER, "token in a finding"))
        return findings

    def _deliver(
        self,
        world: _ProcessorWorld,
        number: int,
        body: str,
        receive_count: int,
        launched_before: set[tuple[str, str]],
        findings: list[Finding],
    ) -> list[tuple[str, str]]:
        """One delivery through the processor: the runs it launched, a finding for each property it broke."""
        from challenge_lambda.processor import InboundMessage, RecordFailed

        why_not, expected = self._expected_phases(body)
        recorded_before = self._recorded_runs()
        calls_before = len(world.launcher.requests)
        failed: RecordFailed | None = None
        try:
            world.processor.process(InboundMessage(message_id=f"m-{number}", body=body, receive_count=receive_count))
        except RecordFailed as error:
            failed = error
            if not error.reason_code:
                findings.append(Finding(Property.OTHER, "RecordFailed without a reason"))
        except Exception as error:
            findings.append(escaped(error))
            return []
        new_runs = [_run_of(request) for request in world.launcher.requests[calls_before:]]
        if why_not is not None:
            findings.extend(self._refused_findings(why_not, new_runs, failed))
            return []  # a refused body's runs are not counted as launched for a later delivery
        submission_id = _named_submission(json.loads(body).get("submissionId"))
        for run in new_runs:
            if run[0] != submission_id or run[1] not in expected:
                findings.append(
                    Finding(Property.ACTED, "RunTask for a run the message did not ask for", f"phase {run[1]}")
                )
        for phase in sorted(expected):
            run = (submission_id, phase)
            # A run an earlier delivery recorded (launched, or recorded as skipped for an inactive challenge) is
            # never launched again: exactly once per (submission, phase), whatever a later message asks.
            if run not in launched_before and run not in recorded_before and run not in new_runs:
                reason = failed.reason_code if failed is not None else "acknowledged"
                findings.append(Finding(Property.OTHER, f"valid body's {phase} run not launched ({reason})"))
        return new_runs

    def _recorded_runs(self) -> set[tuple[str, str]]:
        """(submission, phase) of every run the status table holds now."""
        from mm_adapters import aws as aws_clients

        items = aws_clients.client("dynamodb").scan(
            TableName=self._table,
            ProjectionExpression="#submission, #phase",
            ExpressionAttributeNames={"#submission": "submissionId", "#phase": "phase"},
        )["Items"]
        return {
            (item["submissionId"]["S"], item["phase"]["S"]) for item in items if {"submissionId", "phase"} <= set(item)
        }

    def _refused_findings(self, why_not: str, new_runs: list[tuple[str, str]], failed: Any) -> list[Finding]:
        """A body it must refuse: nothing launched, and (but for a v6 skip or a duplicate) failed, not acked."""
        findings: list[Finding] = []
        if new_runs:
            findings.append(Finding(Property.ACTED, f"RunTask for a body it must refuse ({why_not})"))
        # A v6 skip is acknowledged (its runs recorded as skipped); anything else refused goes back failed.
        # An unconfigured phase whose run exists already (e.g. recorded as skipped) is a duplicate: acked.
        must_fail = (why_not != _SKIPPED or self._platform is Platform.V5) and not why_not.startswith("phase ")
        if must_fail and failed is None:
            findings.append(Finding(Property.OTHER, f"refused body acknowledged, not failed ({why_not})"))
        return findings


def _named_submission(value: Any) -> Any:
    """The submission a body names, as the contract reads it: a v5 UUID in its canonical form; any other id without
    the whitespace around it (every contract model strips its strings, `ContractModel`'s `str_strip_whitespace`), so
    " X " names the run of X, never a run of its own."""
    return canonical_uuid(value) or (value.strip() if isinstance(value, str) else value)


def _run_of(request: Any) -> tuple[str, str]:
    """(submission, phase) a RunTask request is for, read from its overrides as the completion function does."""
    overrides = request.kwargs["overrides"]["containerOverrides"][0]
    env = {pair["name"]: pair["value"] for pair in overrides.get("environment", [])}
    return str(env.get("MM_SUBMISSION_ID", request.client_token)), str(env.get("MM_PHASE"))
