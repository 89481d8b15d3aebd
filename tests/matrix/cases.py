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
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from mm_contracts.models.phase import Platform, run_id
from tests.fakes.ecs import TaskScript
from tests.matrix.world import CHALLENGE_ID, World

S1 = "0b7a4c1e-1111-4a2b-9c3d-000000000001"
S2 = "0b7a4c1e-2222-4a2b-9c3d-000000000002"
N1 = "V6matrixSub001"  # a v6 submission: the platform's 14-character nanoid
NE, NP = run_id(N1, "EXAMPLE"), run_id(N1, "PROVISIONAL")  # its two runs on the v6 challenge

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
    # v6 (the key is a run id): summations of the run's phase at the end (the scorer's included), how many of
    # them we wrote, and the testStatus of the one terminal summation (aggregateScore -1, isPassing false).
    summations: int | None = None
    our_summations: int | None = None
    summation_status: str | None = None


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
    submit: bool = True  # S1 (v6: N1) is submitted (to Kafka or the queue); False: the setup submits everything
    platform: Platform = Platform.V5
    extra_check: Callable[[World], list[str]] | None = None  # what only this case can say went wrong
    # A defect the case shows in the code as it stands, not fixed yet: the case runs as a strict xfail, so it
    # turns the suite red the day the defect is fixed (then delete this) or the case stops showing it.
    open_defect: str = ""

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


# ---------------------------------------------------------------- capacity (issue 11): slot accounting
ONE_SLOT: dict[str, object] = {"capacity": {"maxRunningTasks": 1}}  # a second run must wait for the first's slot


def _second_waits(world: World) -> None:
    """S2 (another member) arrives while S1 holds the challenge's only slot: it waits, then takes that slot."""
    world.submit_to_queue(S2, at=10, member_id=40_158_995)


def _redrive_at(seconds: float) -> Callable[[World], None]:
    """The operator redrives the challenge DLQ (every message back to its queue) `seconds` after the start."""

    def setup(world: World) -> None:
        def redrive() -> None:
            for message in list(world.queue.dead_letters):
                world.queue.dead_letters.remove(message)
                world.queue.send(message.body, attributes=message.attributes)

        world.scheduler.at(world.clock.start + seconds, redrive, "operator redrives the DLQ")

    return setup


def _redriven_once(world: World) -> list[str]:
    sends = [m for m in world.queue.sent if S1 in m.body]
    return [] if len(sends) >= 2 else ["the DLQ was never redriven (vacuous case)"]


def _s2_waited(world: World) -> list[str]:
    """S2 really waited for S1's slot (else the case shows nothing about slots)."""
    records = world.records()
    first, second = records.get(run_id(S1, "PROVISIONAL")), records.get(run_id(S2, "PROVISIONAL"))
    if first is None or second is None or second.admitted_at is None or first.stopped_at is None:
        return ["S1 or S2 has no admission or stop recorded"]
    if second.admitted_at < first.stopped_at.timestamp():
        return [f"S2 was admitted at {second.admitted_at}, before S1 stopped: it never waited for the slot"]
    if world.ecs_fake.running_most.get(CHALLENGE_ID, 0) > 1:
        return [f"{world.ecs_fake.running_most[CHALLENGE_ID]} tasks ran at once under a cap of 1"]
    return []


# ---------------------------------------------------------------- v6 expectations and setups
def v6_scored(**kwargs: object) -> Expect:
    """A v6 run that succeeded: the scorer's own summation is the phase's one; we write none."""
    values: dict[str, object] = {
        "reviews": 0,
        "summations": 1,
        "our_summations": 0,
        "report": ReportStatus.NOT_REQUIRED,
        "tasks_started": 1,
        "completions": 1,
    }
    return Expect(SUCCEEDED, EXITED_0, **{**values, **kwargs})  # type: ignore[arg-type]


def v6_ok(**kwargs: object) -> dict[str, Expect]:
    return {NE: v6_scored(**kwargs), NP: v6_scored(**kwargs)}


def v6_unscored(state: SubmissionState, reason: str, **kwargs: object) -> Expect:
    """A v6 run without a score: exactly one terminal summation of its phase, ours, FAILED."""
    values: dict[str, object] = {
        "reviews": 0,
        "summations": 1,
        "our_summations": 1,
        "summation_status": "FAILED",
        "report": ReportStatus.REPORTED,
    }
    return Expect(state, reason, **{**values, **kwargs})  # type: ignore[arg-type]


EXITED_2 = r"exited with code 2"
FAILS = TaskScript(exit_code=2)


def v6_provisional_fails(**kwargs: object) -> dict[str, Expect]:
    return {NE: v6_scored(), NP: v6_unscored(FAILED, EXITED_2, completions=1, tasks_started=1, **kwargs)}


def _skipped_and_invoke_lost(world: World) -> None:
    """The challenge is inactive: the router routes the v6 record with a skip reason; the processor records
    both runs FAILED and its report-due invokes are lost, so only the sweeper can get the summations written."""
    world.set_challenge_active(False)
    world.lose_report_due_invokes = 2


def _report_due_invokes_lost(world: World) -> list[str]:
    sent = [event.get("detail", {}).get("runId") for event in world.report_due_invokes]
    if sorted(sent) != sorted([NE, NP]):
        return [f"the processor's report-due invokes were {sent}, expected one per skipped run"]
    if world.lose_report_due_invokes:
        return ["the report-due invokes were never lost (vacuous case)"]
    return []


def _scorer_progress_summation(world: World) -> None:
    """The PROVISIONAL scorer posted its in-progress summation before it failed (as Topcoder's scorers do)."""
    world.summations.add_summation(
        submissionId=N1,
        aggregateScore=0,
        isPassing=False,
        isProvisional=True,
        metadata={"testType": "provisional", "testStatus": "IN_PROGRESS", "testProgress": 0.4, "reportedBy": "scorer"},
    )


def _patched_not_posted(world: World) -> list[str]:
    posts = [w for w in world.summations.writes if w.method == "POST" and w.body.get("isProvisional")]
    return [f"{len(posts)} PROVISIONAL summation POSTs: the scorer's summation must be updated"] if posts else []


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
    # ---- capacity: slots never leak or double-free (every case also checks the drained pools, test_matrix)
    Case(
        "capacity 1: S1's STOPPED event duplicated while S2 waits: the slot is freed once, S2 takes it",
        (K.STOPPED_EVENT_DUPLICATE,),
        (rule(K.STOPPED_EVENT_DUPLICATE),),
        {**ok(tasks_started=1), S2: Expect(SUCCEEDED, EXITED_0, report=ReportStatus.REPORTED, tasks_started=1)},
        config=ONE_SLOT,
        setup=_second_waits,
        extra_check=_s2_waited,
    ),
    Case(
        "capacity 1: S1's STOPPED event lost while S2 waits: the sweeper reconciles it and frees the slot",
        (K.STOPPED_EVENT_LOST,),
        (rule(K.STOPPED_EVENT_LOST),),
        {**ok(completions=1), S2: Expect(SUCCEEDED, EXITED_0, report=ReportStatus.REPORTED, tasks_started=1)},
        config={**ONE_SLOT, "timeout": 3600},
        setup=_second_waits,
        extra_check=_s2_waited,
    ),
    Case(
        "capacity 1: crash between S1's RunTask and its record while S2 waits: one task, the slot kept, then S2",
        (K.CRASH_AFTER_RUN_TASK,),
        (rule(K.CRASH_AFTER_RUN_TASK),),
        {**ok(tasks_started=1, completions=1), S2: Expect(SUCCEEDED, EXITED_0, tasks_started=1)},
        config=ONE_SLOT,
        scripts={S1: LONG},
        setup=_second_waits,
        extra_check=_s2_waited,
    ),
    Case(
        "RunTask failures[] until DEAD_LETTERED, then the DLQ redriven: back to waiting, admitted, one task",
        (K.RUN_TASK_FAILURES,),
        (rule(K.RUN_TASK_FAILURES, first_n=3),),
        ok(tasks_started=1),
        config=ONE_SLOT,
        setup=_redrive_at(1500),
        extra_check=_redriven_once,
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

V6 = Platform.V6
V6_LONG = TaskScript(run_seconds=900)
V6_CASES: tuple[Case, ...] = (
    Case("v6 baseline: EXAMPLE and PROVISIONAL, both scored", (), (), v6_ok(), platform=V6),
    Case(
        "v6 baseline: PROVISIONAL exits 2: one FAILED summation for that phase only",
        (),
        (),
        v6_provisional_fails(),
        platform=V6,
        scripts={NP: FAILS},
    ),
    Case(
        "v6 duplicate SQS delivery at once: one task per phase",
        (K.SQS_DUPLICATE_DELIVERY,),
        (rule(K.SQS_DUPLICATE_DELIVERY, N1),),
        v6_ok(),
        platform=V6,
    ),
    Case(
        "v6 RunTask 5xx after PROVISIONAL's task started: the retry finds it, EXAMPLE unaffected",
        (K.RUN_TASK_5XX_AFTER_START,),
        (rule(K.RUN_TASK_5XX_AFTER_START, NP),),
        v6_ok(),
        platform=V6,
        scripts={N1: V6_LONG},
    ),
    Case(
        "v6 RunTask read timeout after EXAMPLE's task started (ambiguous)",
        (K.RUN_TASK_TIMEOUT_AFTER_START,),
        (rule(K.RUN_TASK_TIMEOUT_AFTER_START, NE),),
        v6_ok(),
        platform=V6,
        scripts={N1: V6_LONG},
    ),
    Case(
        "v6 crash after the first RunTask, before recording: the retry launches each phase once",
        (K.CRASH_AFTER_RUN_TASK,),
        (rule(K.CRASH_AFTER_RUN_TASK, N1),),
        v6_ok(),
        platform=V6,
        scripts={N1: V6_LONG},
    ),
    Case(
        "v6 RunTask failures[] on every EXAMPLE receive while PROVISIONAL launches once",
        (K.RUN_TASK_FAILURES,),
        (rule(K.RUN_TASK_FAILURES, NE, every=True),),
        {
            NE: v6_unscored(DEAD_LETTERED, r"Capacity", tasks_started=0, completions=0, dead_lettered_message=None),
            NP: v6_scored(dead_lettered_message=None),
        },
        platform=V6,
    ),
    Case(
        "v6 RunTask failures[] twice on EXAMPLE, then its task: PROVISIONAL never relaunched",
        (K.RUN_TASK_FAILURES,),
        (rule(K.RUN_TASK_FAILURES, NE, first_n=2),),
        v6_ok(),
        platform=V6,
    ),
    Case(
        "v6 STOPPED event of the failed PROVISIONAL run lost: reconciled, one FAILED summation",
        (K.STOPPED_EVENT_LOST,),
        (rule(K.STOPPED_EVENT_LOST, NP),),
        v6_provisional_fails(),
        platform=V6,
        scripts={NP: FAILS},
        config={"timeout": 3600},
    ),
    Case(
        "v6 duplicate STOPPED event of the failed run: the same summation, never a second",
        (K.STOPPED_EVENT_DUPLICATE,),
        (rule(K.STOPPED_EVENT_DUPLICATE, NP),),
        v6_provisional_fails(),
        platform=V6,
        scripts={NP: FAILS},
    ),
    Case(
        "v6 scorer's in-progress summation exists, the run fails: that summation is updated, not a second",
        (),
        (),
        v6_provisional_fails(),
        platform=V6,
        scripts={NP: FAILS},
        setup=_scorer_progress_summation,
        extra_check=_patched_not_posted,
    ),
    Case(
        "v6 review API 5xx for 30 minutes: async retries, DLQ, the sweeper re-drives; one summation",
        (K.TOPCODER_5XX,),
        (rule(K.TOPCODER_5XX, N1, window=window(0, 1800)),),
        v6_provisional_fails(),
        platform=V6,
        scripts={NP: FAILS},
    ),
    Case(
        "v6 summation POST read timeout, nothing committed: posted once later",
        (K.TOPCODER_TIMEOUT,),
        (rule(K.TOPCODER_TIMEOUT, N1, params={"method": "POST"}),),
        v6_provisional_fails(),
        platform=V6,
        scripts={NP: FAILS},
    ),
    Case(
        "v6 summation POST slow commit (45 s): the retry lists it and writes no second",
        (K.TOPCODER_SLOW_COMMIT,),
        (rule(K.TOPCODER_SLOW_COMMIT, N1, params={"commit_delay_seconds": 45}),),
        v6_provisional_fails(),
        defect="4 on v6 (an ambiguous summation POST followed by a second POST)",
        platform=V6,
        scripts={NP: FAILS},
    ),
    Case(
        "v6 crash after the summation POST, before recording: the retry finds it",
        (K.CRASH_AFTER_REVIEW_POST,),
        (rule(K.CRASH_AFTER_REVIEW_POST, N1),),
        v6_provisional_fails(),
        platform=V6,
        scripts={NP: FAILS},
    ),
    Case(
        "v6 401, token rotated: one refresh, one summation",
        (K.TOPCODER_401_ROTATED,),
        (rule(K.TOPCODER_401_ROTATED, N1),),
        v6_provisional_fails(),
        platform=V6,
        scripts={NP: FAILS},
    ),
    Case(
        "v6 PROVISIONAL scorer past its timeout: stopped, TIMED_OUT, its summation says timed_out",
        (K.SCORER_OVERRUN,),
        (rule(K.SCORER_OVERRUN, NP),),
        {NE: v6_scored(), NP: v6_unscored(TIMED_OUT, TIMED_OUT_REASON, completions=0, tasks_started=1)},
        platform=V6,
    ),
    Case(
        "v6 submission of an inactive challenge, report-due invokes lost: the sweeper gets both summations written",
        (),
        (),
        {
            NE: v6_unscored(FAILED, r"inactive", tasks_started=0, completions=0),
            NP: v6_unscored(FAILED, r"inactive", tasks_started=0, completions=0),
        },
        platform=V6,
        via_kafka=True,
        setup=_skipped_and_invoke_lost,
        extra_check=_report_due_invokes_lost,
    ),
)
CASES = CASES + V6_CASES
