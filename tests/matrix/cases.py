"""The fault matrix: one case per fault kind (or pair), with the final state the issue's fixes require.

Expectations come from issue 7's defect list and the status-item protocol, not from what the code does
today: a case that fails names the defect it shows (`defect`). Submission ids are fixed per case so a failing
case is reproducible; every case runs in a fresh moto account and a fresh virtual clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from fault_injection import FaultKind, FaultPlan, FaultRule, FaultWindow
from mm_shared.models.lifecycle import ReportStatus, SubmissionState
from tests.fakes.ecs import TaskScript
from tests.matrix.world import CHALLENGE_ID, World

S1 = "0b7a4c1e-1111-4a2b-9c3d-000000000001"
S2 = "0b7a4c1e-2222-4a2b-9c3d-000000000002"

SUCCEEDED, FAILED, TIMED_OUT = SubmissionState.SUCCEEDED, SubmissionState.FAILED, SubmissionState.TIMED_OUT
DEAD_LETTERED = SubmissionState.DEAD_LETTERED
EXITED_0 = r"scorer exited 0"
TIMED_OUT_REASON = r"timed out"
OUTCOME_UNKNOWN = r"outcome unknown"


@dataclass(frozen=True)
class Expect:
    """The one final state of one submission. `state` None: the pipeline must keep no item for it."""

    state: SubmissionState | None
    reason: str | None = None  # regex searched in the item's `reason`
    reviews: int = 1  # reviews the API holds for the submission at the end (slow commits included)
    completions: int | None = None  # tasks that ran the scorer to its own end (default: 1 if SUCCEEDED else <= 1)
    report: ReportStatus | None = None
    dead_lettered_message: bool | None = False  # the routed message ends in the challenge DLQ (None: either)
    tasks_started: int | None = None


@dataclass(frozen=True)
class Case:
    name: str
    kinds: tuple[FaultKind, ...]
    rules: tuple[FaultRule, ...]
    expect: dict[str, Expect]
    defect: str = ""  # the defect this case shows when it fails
    via_kafka: bool = False
    scripts: dict[str, TaskScript] = field(default_factory=dict)
    config: dict[str, object] = field(default_factory=dict)
    setup: Callable[[World], None] | None = None
    must_fire: bool = True  # every kind of the case fired at least once (no vacuous pass)
    submit: bool = True  # S1 is submitted (to Kafka or the queue); False: the setup submits everything

    def plan(self) -> FaultPlan:
        return FaultPlan(rules=list(self.rules))


def rule(kind: FaultKind, target: str | None = S1, **kwargs: object) -> FaultRule:
    if not any(k in kwargs for k in ("first_n", "every", "window")):
        kwargs["first_n"] = 1
    return FaultRule.model_validate({"kind": kind, "target": target, **kwargs})


def window(start: float, end: float) -> FaultWindow:
    return FaultWindow(start=start, end=end)


def ok(**kwargs: object) -> dict[str, Expect]:
    return {S1: Expect(SUCCEEDED, EXITED_0, report=ReportStatus.REPORTED, **kwargs)}  # type: ignore[arg-type]


LONG = TaskScript(run_seconds=900)  # a scorer still running when the retry comes


# ---------------------------------------------------------------- custom setups
def _unknown_submission_event(world: World) -> None:
    """A STOPPED event of a task with our startedBy for a submission the pipeline never launched (defect 8)."""
    from tests.matrix.world import CLUSTER_ARN, _stopped_event

    detail = {
        "taskArn": f"{CLUSTER_ARN.replace(':cluster/', ':task/')}/{'f' * 32}",
        "clusterArn": CLUSTER_ARN,
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "startedBy": world.started_by_value(),
        "stopCode": "EssentialContainerExited",
        "stoppedReason": "Essential container in task exited",
        "containers": [{"name": "scorer", "lastStatus": "STOPPED", "exitCode": 0}],
        "overrides": {
            "containerOverrides": [
                {
                    "name": "scorer",
                    "environment": [
                        {"name": "MM_SUBMISSION_ID", "value": S2},
                        {"name": "MM_CHALLENGE_ID", "value": CHALLENGE_ID},
                        {"name": "MM_LAUNCH_ATTEMPT", "value": "1"},
                    ],
                }
            ]
        },
    }
    world.scheduler.at(
        world.clock.start + 10, lambda: world.invoke_completion_async(_stopped_event(detail, world.clock()))
    )


def _config_broken_then_fixed(world: World) -> None:
    """After the launch the challenge config becomes unusable, and is fixed half an hour later (defect 6)."""
    good = dict(world.config_document)
    world.scheduler.at(world.clock.start + 30, lambda: world.put_config({"challengeId": CHALLENGE_ID}), "config broken")
    world.scheduler.at(world.clock.start + 1800, lambda: world.put_config(good), "config fixed")


def _bad_url(world: World) -> None:
    """A routed message whose URL the processor must not launch a scorer on (defect 8)."""
    body = json.loads(world.routed(S2).to_json())
    body["url"] = "file:///etc/passwd"
    world.scheduler.at(world.clock.start, lambda: world.queue.send(json.dumps(body)), "bad url")


def _huge_member_id(world: World) -> None:
    from tests.builders import KafkaRecord, bus_envelope, submission_payload

    record = KafkaRecord(
        bus_envelope(submission_payload(submission_id=S2, challenge_id=CHALLENGE_ID, member_id=10**30)),
        offset=world._offset(),
        timestamp=int(world.clock() * 1000),
    )
    world.scheduler.at(world.clock.start, lambda: world._kafka_batch([record], 0), "kafka huge member id")


def _bad_record_in_outage(world: World) -> None:
    """A record the router skips (a review event), in the same batch as S1, during the SNS outage (defect 9)."""
    from tests.builders import KafkaRecord, review_envelope

    world.submit_to_kafka([S1], extra=[KafkaRecord(review_envelope(S2))])


# ---------------------------------------------------------------- the matrix
K = FaultKind
CASES: tuple[Case, ...] = (
    Case("baseline: one submission, no fault", (), (), ok(completions=1, tasks_started=1)),
    # ---- router / SNS
    Case(
        "SNS PublishBatch partial failure: the entry is published again, once",
        (K.SNS_PUBLISH_PARTIAL_FAILURE,),
        (rule(K.SNS_PUBLISH_PARTIAL_FAILURE, CHALLENGE_ID),),
        ok(tasks_started=1),
        via_kafka=True,
    ),
    Case(
        "SNS outage for 2 minutes: Kafka retries; one audit record per skipped record",
        (K.SNS_OUTAGE,),
        (rule(K.SNS_OUTAGE, None, window=window(0, 120)),),
        ok(tasks_started=1),
        defect="9 (re-audit on retried Kafka batches)",
        via_kafka=True,
        setup=_bad_record_in_outage,
        submit=False,
    ),
    # ---- DynamoDB
    Case(
        "DynamoDB throttling of the first two status calls",
        (K.DYNAMODB_THROTTLING,),
        (rule(K.DYNAMODB_THROTTLING, first_n=2),),
        ok(tasks_started=1),
    ),
    Case(
        "DynamoDB outage for the first 5 minutes (launch side)",
        (K.DYNAMODB_OUTAGE,),
        (rule(K.DYNAMODB_OUTAGE, None, window=window(0, 300)),),
        ok(tasks_started=1),
    ),
    Case(
        "DynamoDB outage while the STOPPED event is processed (async retries)",
        (K.DYNAMODB_OUTAGE,),
        (rule(K.DYNAMODB_OUTAGE, None, window=window(70, 200)),),
        ok(tasks_started=1),
    ),
    Case(
        "DynamoDB conditional-check race on the launch claim (a concurrent delivery claims first, then dies)",
        (K.DYNAMODB_CONDITION_RACE,),
        (rule(K.DYNAMODB_CONDITION_RACE),),
        ok(tasks_started=1),
        defect="2 (re-claim of an expired lease)",
    ),
    # ---- SSM
    Case(
        "SSM throttling of the processor's config read",
        (K.SSM_THROTTLING,),
        (rule(K.SSM_THROTTLING, CHALLENGE_ID),),
        ok(tasks_started=1),
    ),
    Case(
        "SSM outage while the completion function reads the config",
        (K.SSM_OUTAGE,),
        (rule(K.SSM_OUTAGE, CHALLENGE_ID, window=window(70, 200)),),
        ok(tasks_started=1),
    ),
    # ---- RunTask
    Case(
        "RunTask failures[] twice, then a task (new clientToken each time)",
        (K.RUN_TASK_FAILURES,),
        (rule(K.RUN_TASK_FAILURES, first_n=2),),
        ok(tasks_started=1),
    ),
    Case(
        "RunTask failures[] on every receive: DEAD_LETTERED with the capacity reason, message in the DLQ",
        (K.RUN_TASK_FAILURES,),
        (rule(K.RUN_TASK_FAILURES, every=True),),
        {S1: Expect(DEAD_LETTERED, r"Capacity", reviews=0, dead_lettered_message=True, tasks_started=0)},
    ),
    Case(
        "RunTask throttled once",
        (K.RUN_TASK_THROTTLING,),
        (rule(K.RUN_TASK_THROTTLING),),
        ok(tasks_started=1),
    ),
    Case(
        "RunTask ConflictException: the task holding the clientToken is adopted, never a second one",
        (K.RUN_TASK_CONFLICT,),
        (rule(K.RUN_TASK_CONFLICT),),
        ok(tasks_started=1, completions=1),
    ),
    Case(
        "RunTask 5xx before the task started",
        (K.RUN_TASK_5XX_BEFORE_START,),
        (rule(K.RUN_TASK_5XX_BEFORE_START),),
        ok(tasks_started=1),
        defect="1 (5xx treated as definite)",
    ),
    Case(
        "RunTask 5xx after the task started (short scorer: its STOPPED event overtakes the retry)",
        (K.RUN_TASK_5XX_AFTER_START,),
        (rule(K.RUN_TASK_5XX_AFTER_START),),
        ok(tasks_started=1, completions=1),
        defect="1 (5xx treated as definite: a new clientToken starts a second task)",
    ),
    Case(
        "RunTask 5xx after the task started (long scorer: the retry finds the task by its clientToken)",
        (K.RUN_TASK_5XX_AFTER_START,),
        (rule(K.RUN_TASK_5XX_AFTER_START),),
        ok(tasks_started=1, completions=1),
        defect="1 (5xx treated as definite: a new clientToken starts a second task)",
        scripts={S1: LONG},
    ),
    Case(
        "RunTask read timeout before the task started",
        (K.RUN_TASK_TIMEOUT_BEFORE_START,),
        (rule(K.RUN_TASK_TIMEOUT_BEFORE_START),),
        ok(tasks_started=1),
    ),
    Case(
        "RunTask read timeout after the task started",
        (K.RUN_TASK_TIMEOUT_AFTER_START,),
        (rule(K.RUN_TASK_TIMEOUT_AFTER_START),),
        ok(tasks_started=1, completions=1),
        scripts={S1: LONG},
    ),
    Case(
        "crash after RunTask, before recording: the retry gets the same task",
        (K.CRASH_AFTER_RUN_TASK,),
        (rule(K.CRASH_AFTER_RUN_TASK),),
        ok(tasks_started=1, completions=1),
        scripts={S1: LONG},
    ),
    Case(
        "crash after RunTask, then the retry's RunTask is throttled: still one scorer run",
        (K.CRASH_AFTER_RUN_TASK, K.RUN_TASK_THROTTLING),
        (rule(K.CRASH_AFTER_RUN_TASK), rule(K.RUN_TASK_THROTTLING, first_n=1, window=window(100, 100_000))),
        ok(completions=1),
        defect="1/3 (the crashed attempt's task must stay tracked or be stopped; never a second scorer run)",
        scripts={S1: LONG},
    ),
    Case(
        "crash after RunTask on every receive, scorer never ends: adopted and timed out, never left running",
        (K.CRASH_AFTER_RUN_TASK, K.SCORER_OVERRUN),
        (rule(K.CRASH_AFTER_RUN_TASK, every=True), rule(K.SCORER_OVERRUN)),
        {S1: Expect(TIMED_OUT, TIMED_OUT_REASON, completions=0, tasks_started=1, dead_lettered_message=None)},
        defect="3 (orphan tasks are never timed out)",
    ),
    # ---- Topcoder API
    Case(
        "Topcoder API 5xx twice (inside the client's own retries)",
        (K.TOPCODER_5XX,),
        (rule(K.TOPCODER_5XX, first_n=2),),
        ok(),
    ),
    Case(
        "Topcoder API down for 30 minutes: async retries, DLQ, then the sweeper re-drives the report",
        (K.TOPCODER_5XX,),
        (rule(K.TOPCODER_5XX, None, window=window(0, 1800)),),
        ok(),
        defect="7 (nothing sweeps stuck reports)",
    ),
    Case("Topcoder API 429 twice", (K.TOPCODER_429,), (rule(K.TOPCODER_429, first_n=2),), ok()),
    Case("Topcoder API read timeout, nothing committed", (K.TOPCODER_TIMEOUT,), (rule(K.TOPCODER_TIMEOUT),), ok()),
    Case(
        "Topcoder API slow commit (45 s): exactly one review",
        (K.TOPCODER_SLOW_COMMIT,),
        (rule(K.TOPCODER_SLOW_COMMIT, params={"commit_delay_seconds": 45}),),
        ok(),
        defect="4 (a slow commit produces two reviews)",
    ),
    Case(
        "Topcoder 401, token rotated: one refresh fixes it",
        (K.TOPCODER_401_ROTATED,),
        (rule(K.TOPCODER_401_ROTATED),),
        ok(),
    ),
    Case(
        "Topcoder 401, token revoked: never reported, never stuck",
        (K.TOPCODER_401_REVOKED,),
        (rule(K.TOPCODER_401_REVOKED, every=True),),
        {S1: Expect(SUCCEEDED, EXITED_0, reviews=0, completions=1)},
    ),
    Case(
        "Topcoder 400 on the review: REJECTED, final, not retried",
        (K.TOPCODER_400,),
        (rule(K.TOPCODER_400, every=True),),
        {S1: Expect(SUCCEEDED, EXITED_0, reviews=0, report=ReportStatus.REJECTED)},
    ),
    Case(
        "Topcoder 404 on the review: REJECTED, final, not retried",
        (K.TOPCODER_404,),
        (rule(K.TOPCODER_404, every=True),),
        {S1: Expect(SUCCEEDED, EXITED_0, reviews=0, report=ReportStatus.REJECTED)},
    ),
    Case(
        "crash after the review POST, before recording: the retry finds the review",
        (K.CRASH_AFTER_REVIEW_POST,),
        (rule(K.CRASH_AFTER_REVIEW_POST),),
        ok(),
        defect="7 (report lease vs retry window)",
    ),
    Case(
        "crash after the review POST, and the status table down for every async retry: the sweeper re-drives",
        (K.CRASH_AFTER_REVIEW_POST, K.DYNAMODB_OUTAGE),
        (rule(K.CRASH_AFTER_REVIEW_POST), rule(K.DYNAMODB_OUTAGE, None, window=window(85, 400))),
        ok(),
        defect="7 (nothing sweeps a report stuck in REPORTING)",
    ),
    # ---- deliveries
    Case(
        "duplicate SQS delivery at once (fresh submission)",
        (K.SQS_DUPLICATE_DELIVERY,),
        (rule(K.SQS_DUPLICATE_DELIVERY),),
        ok(tasks_started=1, completions=1),
    ),
    Case(
        "duplicate SQS delivery at once on an expired ambiguous lease, the winner's RunTask throttled",
        (K.SQS_DUPLICATE_DELIVERY, K.RUN_TASK_TIMEOUT_BEFORE_START, K.RUN_TASK_THROTTLING),
        (
            rule(K.RUN_TASK_TIMEOUT_BEFORE_START),
            rule(K.SQS_DUPLICATE_DELIVERY, first_n=1, window=window(100, 300)),
            rule(K.RUN_TASK_THROTTLING, first_n=1, window=window(100, 300)),
        ),
        ok(completions=1),
        defect="2 (two deliveries re-claim the same expired lease)",
    ),
    Case(
        "the same submission in a second Kafka batch 2 hours later",
        (K.KAFKA_REDELIVERY,),
        (rule(K.KAFKA_REDELIVERY, params={"delay_seconds": 7200}),),
        ok(tasks_started=1),
        via_kafka=True,
    ),
    Case(
        "the same submission in a second Kafka batch while its task runs",
        (K.KAFKA_REDELIVERY,),
        (rule(K.KAFKA_REDELIVERY, params={"delay_seconds": 120}),),
        ok(tasks_started=1),
        via_kafka=True,
        scripts={S1: LONG},
    ),
    # ---- STOPPED events
    Case("duplicate STOPPED event", (K.STOPPED_EVENT_DUPLICATE,), (rule(K.STOPPED_EVENT_DUPLICATE),), ok()),
    Case(
        "STOPPED event reordered behind the sweeper's synthetic one",
        (K.STOPPED_EVENT_REORDERED,),
        (rule(K.STOPPED_EVENT_REORDERED),),
        ok(completions=1),
    ),
    Case(
        "STOPPED event delayed 20 minutes",
        (K.STOPPED_EVENT_DELAYED,),
        (rule(K.STOPPED_EVENT_DELAYED, params={"delay_seconds": 1200}),),
        ok(completions=1),
    ),
    Case(
        "STOPPED event lost, scorer exited 0, 3600 s timeout: SUCCEEDED, never TIMED_OUT",
        (K.STOPPED_EVENT_LOST,),
        (rule(K.STOPPED_EVENT_LOST),),
        ok(completions=1),
        defect="5 (lost event reported TIMED_OUT)",
        config={"timeout": 3600},
    ),
    Case(
        "STOPPED event lost and ECS forgot the task: FAILED, outcome unknown (not a timeout)",
        (K.STOPPED_EVENT_LOST, K.ECS_FORGETS_STOPPED_TASK),
        (rule(K.STOPPED_EVENT_LOST), rule(K.ECS_FORGETS_STOPPED_TASK, params={"after_seconds": 60})),
        {S1: Expect(FAILED, OUTCOME_UNKNOWN, completions=1)},
        defect="5 (outcome invented as a timeout)",
        config={"timeout": 3600},
    ),
    Case(
        "ECS forgets the stopped task a minute later; the event came: FAILED with the exit code",
        (K.ECS_FORGETS_STOPPED_TASK,),
        (rule(K.ECS_FORGETS_STOPPED_TASK, params={"after_seconds": 60}),),
        {S1: Expect(FAILED, r"exited with code 3", completions=1)},
        scripts={S1: TaskScript(exit_code=3)},
    ),
    # ---- task behaviour
    Case(
        "TaskFailedToStart once (image pull, transient): relaunched, one success review",
        (K.TASK_FAILED_TO_START,),
        (rule(K.TASK_FAILED_TO_START),),
        ok(tasks_started=2, completions=1),
        defect="10 (TaskFailedToStart is a member-facing failure at once)",
    ),
    Case(
        "TaskFailedToStart on every start: bounded relaunches, then FAILED (failed to start)",
        (K.TASK_FAILED_TO_START,),
        (rule(K.TASK_FAILED_TO_START, every=True),),
        {S1: Expect(FAILED, r"failed to start", completions=0, tasks_started=3)},
        defect="10 (relaunch must be bounded)",
    ),
    Case(
        "scorer past its timeout: stopped, TIMED_OUT",
        (K.SCORER_OVERRUN,),
        (rule(K.SCORER_OVERRUN),),
        {S1: Expect(TIMED_OUT, TIMED_OUT_REASON, completions=0, tasks_started=1)},
    ),
    # ---- scenario defects (no injected fault)
    Case(
        "sidecar exits 0 first, scorer exits 1, config unusable at completion: FAILED, reported once fixed",
        (),
        (),
        {S1: Expect(FAILED, r"exited with code 1", completions=1, report=ReportStatus.REPORTED)},
        defect="6 (sidecar decides the outcome; no report settled without the policy)",
        scripts={S1: TaskScript(exit_code=1, sidecar="log-router")},
        setup=_config_broken_then_fixed,
    ),
    Case(
        "a STOPPED event of ours for a submission never launched: ignored, no item, no review",
        (),
        (),
        {**ok(), S2: Expect(None, reviews=0, completions=0, tasks_started=0)},
        defect="8 (completion acts on submissions it never launched)",
        setup=_unknown_submission_event,
    ),
    Case(
        "a routed message with a file:// URL: never launched",
        (),
        (),
        {**ok(), S2: Expect(None, reviews=0, completions=0, tasks_started=0, dead_lettered_message=True)},
        defect="8 (processor launches any URL)",
        setup=_bad_url,
    ),
    Case(
        "an oversized memberId: rejected by the router, never routed",
        (),
        (),
        {**ok(), S2: Expect(None, reviews=0, completions=0, tasks_started=0)},
        defect="8 (oversized memberId routed, then fails at the claim)",
        via_kafka=True,
        setup=_huge_member_id,
    ),
)
