"""The completion function's fuzz inputs: ECS STOPPED events mutated from the launched task's real one (v5 and
v6), and v6 report-due events, in sequences of invocations."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from mm_contracts.models.phase import ScoringPhase, run_id
from mm_contracts.models.report_due import report_due_event
from mm_contracts.models.task import TaskEnv
from mm_contracts.names import DEFAULT_SUBMISSION_TOPIC, started_by
from tests.builders import ecs_task_stopped_event
from tests.fuzz.strategies import (
    CANARY_TOKEN,
    CLUSTER_ARN,
    ENVIRONMENT,
    KNOWN_CHALLENGE,
    PHASE_VALUES,
    SEEDED_SUBMISSION,
    SEEDED_TASK_ARN,
    V6_LAUNCHED_PHASE,
    V6_LAUNCHED_RUN,
    V6_LAUNCHED_SUBMISSION,
    V6_SKIPPED_RUN,
    V6_SKIPPED_SUBMISSION,
    V6_TASK_ARN,
    hostile_values,
    id_variants,
    mutate_object,
    nanoid_variants,
    nanoids,
    phase_values,
    task_arn_of,
)


# ---------------------------------------------------------------- completion: ECS STOPPED events
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


# ---------------------------------------------------------------- v6: completion (STOPPED events, report-due events)
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
