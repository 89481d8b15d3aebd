"""The completion function's fuzz checkers: `parse_event` + `CompletionService.process` with the real StatusStore on
moto; the APIs, the config and DescribeTasks are fakes.

Properties: parsing raises nothing but `InvalidEventError`; no status item is created and no report posted for a
run the pipeline did not record; a seeded run is acted on only by its own input. `SeededCompletionChecker` holds
what the v5 and v6 checkers share (the table between inputs, one input through parse and process); the v6 one is
in `completion_v6_checker.py`.

The DescribeTasks fakes here are not the matrix's `tests.fakes.ecs.FakeEcs` on purpose: they answer for exactly
the seeded task, with no lifecycle, so an input can only ever see the one task the pipeline launched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mm_contracts.models.phase import run_id
from tests.fuzz.findings import Finding, Property, escaped, quiet, safe
from tests.fuzz.moto_tables import CAPACITY_TABLE, ROOMY_CAPACITY, capacity_parameter, empty_tables
from tests.fuzz.oracles import canonical_uuid
from tests.fuzz.strategies import (
    CANARY_TOKEN,
    CLUSTER_ARN,
    ENVIRONMENT,
    KNOWN_CHALLENGE,
    SEEDED_PHASE,
    SEEDED_RUN,
    SEEDED_SUBMISSION,
    SEEDED_TASK_ARN,
)


def completion_dependencies(table: str, clock: Any, store: Any, **settings_and_ports: Any) -> Any:
    """`CompletionDependencies` on the fuzz tables: the real capacity store with roomy caps (no SSM), the given
    API URL setting (`submission_api_url` / `review_api_url`) and ports."""
    from completion_lambda.wiring import CompletionDependencies
    from mm_capacity.store import CapacityStore
    from mm_contracts.models.capacity import EnvironmentCapacity
    from mm_contracts.settings import CompletionSettings
    from tests.fakes.metrics import RecordingMetrics

    urls = {
        name: settings_and_ports.pop(name)
        for name in ("submission_api_url", "review_api_url")
        if name in settings_and_ports
    }
    settings = CompletionSettings(
        environment_name=ENVIRONMENT,
        status_table_name=table,
        challenge_config_parameter_prefix="/mm-processor/challenges",
        capacity_table_name=CAPACITY_TABLE,
        capacity_parameter_name=capacity_parameter(),
        **urls,
    )
    caps = EnvironmentCapacity.model_validate(ROOMY_CAPACITY)
    return CompletionDependencies(
        settings,
        capacity_store=CapacityStore(CAPACITY_TABLE, table, clock=clock),
        environment_capacity=lambda: caps,
        store=store,
        metrics_sink=RecordingMetrics(),
        **settings_and_ports,
    )


def seed_launched(store: Any, submission: Any, phase: Any, task_arn: str) -> None:
    """The run of `submission` and `phase` LAUNCHED on `task_arn`, as the challenge processor leaves it."""
    claim = store.claim_launch(submission, phase=phase, scorer_type="example-scorer", lease_seconds=60)
    assert claim.granted
    assert store.mark_launched(
        run_id(submission.submission_id, phase),
        attempt=claim.attempt,
        task_arn=task_arn,
        cluster_arn=CLUSTER_ARN,
        timeout_seconds=3600,
    )


def state_changed(before: Any, after: Any) -> bool:
    """Whether a run's record appeared, vanished, or changed its state or report status."""
    if before is None or after is None:
        return (before is None) != (after is None)
    return bool((before.state, before.report_status) != (after.state, after.report_status))


class SeededCompletionChecker:
    """One input = a sequence of events on a fresh table with the seeded runs; subclasses seed, build and judge."""

    name = "completion"

    def __init__(self, table: str) -> None:
        self._table = table
        self._dirty = True  # the table holds items of an earlier input (each check empties it when done)

    def units(self, events: list[dict[str, Any]]) -> int:
        return len(events)

    def check(self, events: list[dict[str, Any]]) -> list[Finding]:
        from completion_lambda.observability import logger

        with quiet(logger):
            return self._check(events)

    def _check(self, events: list[dict[str, Any]]) -> list[Finding]:
        raise NotImplementedError

    def _fresh(self) -> None:
        """An empty table (unless the last input left it so) before the next input's seeds."""
        if self._dirty:
            empty_tables(self._table)
        self._dirty = True

    def _finish(self) -> list[dict[str, Any]]:
        """Every item the input left (wire form); the table is empty again."""
        items = empty_tables(self._table)
        self._dirty = False
        return items

    @staticmethod
    def _deliver(service: Any, event: Any, findings: list[Finding]) -> bool:
        """One event through parse and process (findings for what escaped); whether it parsed (so was acted on)."""
        from completion_lambda.events import InvalidEventError, parse_event

        try:
            parsed = parse_event(event)
        except InvalidEventError as error:
            if CANARY_TOKEN in str(error):
                findings.append(Finding(Property.OTHER, "token in the InvalidEventError message"))
            return False
        except Exception as error:
            findings.append(escaped(error))
            return False
        try:
            service.process(parsed)
        except Exception as error:
            findings.append(escaped(error))
            if CANARY_TOKEN in str(error):
                findings.append(Finding(Property.OTHER, "token in an escaped exception"))
        return True


@dataclass
class SeededTaskEcs:
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


def first_env(event: Any, name: str) -> Any:
    """The first value of `name` across the container overrides, as the completion function reads it."""
    detail = event.get("detail") if isinstance(event, dict) else None
    overrides = detail.get("overrides") if isinstance(detail, dict) else None
    containers = overrides.get("containerOverrides") if isinstance(overrides, dict) else None
    for override in containers if isinstance(containers, list) else []:
        if isinstance(override, dict) and isinstance(override.get("environment"), list):
            for pair in override["environment"]:
                if isinstance(pair, dict) and pair.get("name") == name:
                    return pair.get("value")
    return None


def is_our_stopped_event(event: Any, task_arn: str) -> bool:
    """An ECS STOPPED event of `task_arn`, started by this environment (the envelope rules every task's own
    event meets; the run it names is judged by the caller)."""
    from mm_contracts.names import started_by_prefix

    if not isinstance(event, dict) or event.get("source") != "aws.ecs":
        return False
    if event.get("detail-type") != "ECS Task State Change":
        return False
    detail = event.get("detail")
    if not isinstance(detail, dict) or detail.get("lastStatus") != "STOPPED" or detail.get("taskArn") != task_arn:
        return False
    started = detail.get("startedBy")
    return isinstance(started, str) and started.startswith(started_by_prefix(ENVIRONMENT))


def _may_act(event: Any) -> bool:
    """True for the launched task's own STOPPED event, the only one allowed to change its item."""
    from mm_contracts.models.task import TaskEnv

    if not is_our_stopped_event(event, SEEDED_TASK_ARN):
        return False
    named = first_env(event, TaskEnv.SUBMISSION_ID.value)
    # Without the variable the service identifies the task by its tags (ours for the seeded task).
    return named in (None, "") or canonical_uuid(named) == SEEDED_SUBMISSION


def _reviews_of_seeded(api: Any) -> int:
    return sum(1 for review in api.reviews if review.get("submissionId") == SEEDED_SUBMISSION)


class CompletionChecker(SeededCompletionChecker):
    """v5: before every input one submission is LAUNCHED (as the challenge processor leaves it); it is the only one
    the pipeline launched, so it is the only item that may change and the only submission that may be reviewed."""

    name = "completion"

    def _service(self) -> tuple[Any, Any, Any]:
        from mm_adapters.status_store import StatusStore
        from tests.fakes.clock import VirtualClock
        from tests.unit.completion.fakes import FakeConfigSource, FakeReviewApi, challenge_config

        clock = VirtualClock()
        store = StatusStore(self._table, clock=clock)
        api = FakeReviewApi()
        deps = completion_dependencies(
            self._table,
            clock,
            store,
            submission_api_url="http://127.0.0.1:9/v5",
            config_source=FakeConfigSource(challenge_config(challenge_id=KNOWN_CHALLENGE, report_on_success=True)),
            review_api=api,
            ecs=SeededTaskEcs(),
        )
        return deps.service(), store, api

    @staticmethod
    def _seed(store: Any) -> None:
        from mm_contracts.models.routed import RoutedSubmission
        from tests.fuzz.sqs_inputs import routed_body

        seed_launched(
            store, RoutedSubmission.model_validate(routed_body(SEEDED_SUBMISSION)), SEEDED_PHASE, SEEDED_TASK_ARN
        )

    def _check(self, events: list[dict[str, Any]]) -> list[Finding]:
        self._fresh()
        service, store, api = self._service()
        self._seed(store)
        findings: list[Finding] = []
        after = store.get(SEEDED_RUN)
        for event in events:
            before = after
            reviews_before = _reviews_of_seeded(api)
            if self._deliver(service, event, findings):  # nothing was called: nothing changed
                after = store.get(SEEDED_RUN)
            changed = state_changed(before, after)
            if not _may_act(event) and (changed or _reviews_of_seeded(api) > reviews_before):
                findings.append(
                    Finding(Property.ACTED, "launched submission acted on by an event that is not its task's")
                )
        for item in self._finish():
            submission_id = item["submissionId"].get("S", "")
            if submission_id != SEEDED_SUBMISSION:
                findings.append(
                    Finding(
                        Property.ACTED, "status item created for a submission never launched", safe(submission_id, 60)
                    )
                )
        for review in api.reviews:
            if review.get("submissionId") != SEEDED_SUBMISSION:
                findings.append(Finding(Property.ACTED, "review posted for a submission never launched"))
        if _reviews_of_seeded(api) > 1:
            findings.append(Finding(Property.ACTED, "more than one review for the launched submission"))
        return findings
