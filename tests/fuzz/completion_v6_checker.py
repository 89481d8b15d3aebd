"""The completion function's v6 fuzz checker: a v6 challenge (EXAMPLE and PROVISIONAL phases), the real StatusStore
on moto, a fake review-api-v6 (`FakeSummations`).

Before every input one run is LAUNCHED and one recorded as skipped (as the processor leaves them); they are the
only runs that may change or get a summation, each only by its own input (its task's STOPPED event, its report-due
event), and each gets at most one summation write.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mm_contracts.models.phase import Platform, ScoringPhase
from tests.fuzz.completion_checker import (
    SeededCompletionChecker,
    SeededTaskEcs,
    completion_dependencies,
    first_env,
    is_our_stopped_event,
    seed_launched,
    state_changed,
)
from tests.fuzz.findings import Finding, Property, safe
from tests.fuzz.strategies import (
    CANARY_TOKEN,
    KNOWN_CHALLENGE,
    V6_LAUNCHED_PHASE,
    V6_LAUNCHED_RUN,
    V6_LAUNCHED_SUBMISSION,
    V6_SKIPPED_PHASE,
    V6_SKIPPED_RUN,
    V6_SKIPPED_SUBMISSION,
    V6_TASK_ARN,
)


@dataclass
class FakeSummations:
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


class SeededV6TaskEcs(SeededTaskEcs):
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


def _may_act_on_launched(event: Any) -> bool:
    """The launched v6 run's own task's STOPPED event: its task, its nanoid and its phase (from the overrides, or
    the task's tags when the overrides name no submission)."""
    from mm_contracts.models.task import TaskEnv

    if not is_our_stopped_event(event, V6_TASK_ARN):
        return False
    named = first_env(event, TaskEnv.SUBMISSION_ID.value)
    phase = first_env(event, TaskEnv.PHASE.value)
    if named in (None, ""):  # identified by the task's tags, which name the launched run
        return phase in (None, "", V6_LAUNCHED_PHASE.value)
    return bool(named == V6_LAUNCHED_SUBMISSION and phase == V6_LAUNCHED_PHASE.value)


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
_MAY_ACT = {V6_LAUNCHED_RUN: _may_act_on_launched, V6_SKIPPED_RUN: _may_act_on_skipped}


def _run_of_write(write: dict[str, Any]) -> str | None:
    """The seeded run a summation write is for (None: none of them), by submission and phase flag."""
    for run, (submission_id, phase) in _SEEDED_V6_RUNS.items():
        if write.get("submissionId") == submission_id and (write.get(phase.summation_flag) or "patched" in write):
            return run
    return None


class V6CompletionChecker(SeededCompletionChecker):
    name = "completion v6"

    def _service(self) -> tuple[Any, Any, FakeSummations]:
        from mm_adapters.status_store import StatusStore
        from mm_contracts.models.phase import PhaseConfig
        from tests.fakes.clock import VirtualClock
        from tests.unit.completion.fakes import FakeConfigSource, FakeReviewApi, challenge_config

        clock = VirtualClock()
        store = StatusStore(self._table, clock=clock)
        summations = FakeSummations()
        config = challenge_config(
            challenge_id=KNOWN_CHALLENGE,
            platform=Platform.V6,
            scorecard_id="Sc0rEcArD-v6_1",
            phases=(PhaseConfig(phase=ScoringPhase.EXAMPLE), PhaseConfig(phase=ScoringPhase.PROVISIONAL)),
        )
        deps = completion_dependencies(
            self._table,
            clock,
            store,
            review_api_url="http://127.0.0.1:9/v6",
            config_source=FakeConfigSource(config),
            review_api=FakeReviewApi(),
            summations_api=summations,
            ecs=SeededV6TaskEcs(),
        )
        return deps.service(), store, summations

    @staticmethod
    def _seed(store: Any) -> None:
        from mm_contracts.models.routed import RoutedSubmission
        from tests.fuzz.sqs_inputs import v6_routed_body

        launched = RoutedSubmission.model_validate(v6_routed_body(V6_LAUNCHED_SUBMISSION))
        seed_launched(store, launched, V6_LAUNCHED_PHASE, V6_TASK_ARN)
        skipped = RoutedSubmission.model_validate(
            v6_routed_body(V6_SKIPPED_SUBMISSION, skip_reason="challenge_inactive")
        )
        assert store.record_skipped(
            skipped, phase=V6_SKIPPED_PHASE, scorer_type="example-scorer", reason="challenge_inactive"
        )

    def _check(self, events: list[dict[str, Any]]) -> list[Finding]:
        self._fresh()
        service, store, api = self._service()
        self._seed(store)
        findings: list[Finding] = []
        after = {run: store.get(run) for run in _SEEDED_V6_RUNS}
        for event in events:
            before = dict(after)
            writes_before = Counter(_run_of_write(write) for write in api.writes)
            if self._deliver(service, event, findings):
                after = {run: store.get(run) for run in _SEEDED_V6_RUNS}
            writes_after = Counter(_run_of_write(write) for write in api.writes)
            for run, allowed in _MAY_ACT.items():
                changed = state_changed(before[run], after[run])
                if not allowed(event) and (changed or writes_after[run] > writes_before[run]):
                    findings.append(Finding(Property.ACTED, f"run {run} acted on by an input that is not its own"))
        findings.extend(self._leftover_findings(self._finish(), api))
        return findings

    @staticmethod
    def _leftover_findings(items: list[dict[str, Any]], api: FakeSummations) -> list[Finding]:
        """What the input left: items of runs never recorded, summations for them, second writes, a token."""
        findings: list[Finding] = []
        for item in items:
            item_run = str(item["runId"].get("S", ""))
            if item_run not in _SEEDED_V6_RUNS:
                findings.append(
                    Finding(Property.ACTED, "status item created for a run never recorded", safe(item_run, 60))
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
