"""The matrix's world: the real functions on moto (DynamoDB, SSM) and the fakes, on one virtual clock.

A discrete-event simulation (decision 078). Everything that happens is an event on the `Scheduler`:
- Kafka -> router (SubmissionRouter.handle, real) -> fake SNS -> the challenge queue (FakeQueue: visibility 180 s,
  maxReceiveCount 3 -> DLQ) -> the Lambda SQS poller (batches of 5) -> challenge_lambda.handler (real, batch
  path) -> RunTask on the fake ECS;
- the fake ECS runs each task PROVISIONING -> RUNNING -> STOPPED and puts its STOPPED event on EventBridge ->
  completion_lambda.handler (real) as an async invocation: a failed one is retried at +60 s and +120 s, then
  kept in the completion DLQ;
- the timeout sweeper (real Sweeper) every 300 s; its synthetic events go the same async way.
A v6 world (`platform=Platform.V6`) hosts a v6 challenge instead: EXAMPLE and PROVISIONAL on each new submission
(two runs, `<submissionId>#<PHASE>`), nanoid submission ids, reports as review-api-v6 summations through the real
`ReviewSummationsClient` on `FakeReviewSummationsApi`, a skipped run handed to the completion function by the
processor's "Run Report Due" invoke (which the world may lose: `lose_report_due_invokes`), and a scorer that
posts its own summation when it exits 0 (as Topcoder's scorers do).
Faults come from one FaultPlan: botocore faults on every AWS client, HTTP faults on the API transport, and the
delivery/task faults decided here with `plan.fire`. Wall time never enters: every clock is the virtual one.
The world's parts live beside it: `deployment` (names, config documents, timings), `functions` (each function as
its wiring builds it), `interleaver` (concurrent deliveries), `lambda_events` (the events in AWS's shapes).
World stays one module of ~650 lines on purpose: every method schedules on, or reads, the same scheduler, fakes
and fault plan, and a case reads as a sequence of its calls.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from challenge_lambda import handler as challenge_handler
from challenge_lambda import wiring as challenge_wiring
from challenge_lambda.processor import ChallengeProcessor
from completion_lambda import handler as completion_handler
from completion_lambda import wiring as completion_wiring
from fault_injection import FaultKind, FaultPlan, SimulatedCrash, install_botocore_faults, with_http_faults
from mm_adapters.status_store import StatusStore, record_from_item
from mm_adapters.topcoder.review_summations import ReviewSummationsClient
from mm_adapters.topcoder.submission_api import SubmissionApiClient
from mm_capacity.config import EnvironmentCapacityLoader
from mm_capacity.store import CAPACITY_TABLE_TTL, CapacityStore, capacity_table_definition
from mm_contracts.models.capacity import EnvironmentCapacity
from mm_contracts.models.lifecycle import LifecycleRecord, SubmissionState
from mm_contracts.models.phase import RUN_ID_SEPARATOR, V6_SUBMISSION_TOPIC, Platform, ScoringPhase
from mm_contracts.models.routed import KafkaCoordinates, RoutedSubmission
from mm_contracts.models.task import TaskEnv
from mm_contracts.names import (
    CHALLENGE_ID_ATTRIBUTE,
    challenge_config_parameter_name,
    started_by,
    started_by_prefix,
)
from mm_contracts.settings import ChallengeProcessorSettings
from mm_contracts.tables import (
    AUDIT_MARKS_TTL,
    STATUS_TABLE_TTL,
    audit_marks_table_definition,
    challenge_table_definition,
    status_table_definition,
)
from tests.builders import FakeLambdaContext, KafkaRecord, bus_envelope, msk_event, submission_payload
from tests.fakes import boto_session
from tests.fakes.clock import Scheduler, VirtualClock
from tests.fakes.ecs import FakeEcs, FakeTask, TaskScript, fake_ecs_client
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.queues import FakeQueue, FakeSqsClient, QueuedMessage, RecordingSqs
from tests.fakes.sns import FakeSns, fake_sns_client
from tests.fakes.topcoder import (
    BASE_URL,
    V6_BASE_URL,
    FakeReviewSummationsApi,
    FakeSubmissionApi,
    FakeTokenProvider,
)
from tests.matrix.deployment import (
    ALLOWED_HOST,
    AUDIT_MARKS_TABLE,
    CAPACITY_PARAMETER,
    CAPACITY_TABLE,
    CHALLENGE_ID,
    CHALLENGE_TABLE,
    CONTAINER,
    ENVIRONMENT,
    MEMBER_HANDLE,
    MEMBER_ID,
    REGION,
    SCORECARD_ID,
    STATUS_TABLE,
    TOPIC,
    Timings,
    queue_name,
    v5_config_document,
    v6_config_document,
)
from tests.matrix.functions import challenge_processor, completion_dependencies, processor_settings, router, sweeper
from tests.matrix.interleaver import Interleaver, install_launch_interleaving
from tests.matrix.lambda_events import run_of, sqs_record, stopped_event, submission_of


@dataclass
class CompletionCall:
    at: float
    attempt: int
    event: dict[str, Any]
    result: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class ChallengeSide:
    """One challenge of the world: its queue (+ DLQ), its config document and its own challenge processor."""

    challenge_id: str
    queue: FakeQueue
    config_document: dict[str, Any]
    processor_settings: ChallengeProcessorSettings | None = None
    processor: ChallengeProcessor | None = None


class World:
    def __init__(
        self,
        plan: FaultPlan,
        *,
        scripts: dict[str, TaskScript] | None = None,
        config: dict[str, Any] | None = None,
        timings: Timings | None = None,
        platform: Platform = Platform.V5,
        challenges: tuple[str, ...] = (CHALLENGE_ID,),
        challenge_configs: dict[str, dict[str, Any]] | None = None,
        environment_capacity: dict[str, Any] | None = None,
        fault_services: tuple[str, ...] = ("dynamodb", "ssm", "sns", "ecs"),
    ) -> None:
        """`config` overrides every challenge's document, `challenge_configs` one challenge's on top; the first of
        `challenges` is the one the single-challenge cases use (`queue`, `processor`, `config_document`).
        `environment_capacity`: the `<ssmPrefix>/capacity` document (default: `EnvironmentCapacity()`'s).
        `fault_services`: the AWS clients the plan's botocore faults are installed on (a plan with only ECS kinds
        can skip the rest: every call of a faulted client checks every rule)."""
        self.plan = plan
        self.platform = platform
        self.fault_services = fault_services
        self.challenge_ids = tuple(dict.fromkeys(challenges))
        self.report_due_invokes: list[dict[str, Any]] = []  # the processor's, as sent (lost ones included)
        self.lose_report_due_invokes = 0  # this many of the processor's report-due invokes never arrive
        self.timings = timings or Timings()
        self.clock = VirtualClock()
        plan.epoch = self.clock.start
        self.scheduler = Scheduler(self.clock)
        self.scripts = dict(scripts or {})
        self.metrics = RecordingMetrics()
        self.completion_calls: list[CompletionCall] = []
        self.completion_dlq: list[dict[str, Any]] = []
        self.stopped_events: list[dict[str, Any]] = []
        self.held_events: dict[str, list[dict[str, Any]]] = {}  # reordered: released after the next one
        self.crashes: list[str] = []
        self.interleaver = Interleaver()
        self._poll_times: set[tuple[str, float]] = set()
        self.kafka_offsets = 100

        # ---- AWS clients on moto (DynamoDB, SSM), each with the plan's faults
        self.ddb = self._client("dynamodb")
        self.ssm = self._client("ssm")
        # The operator's own clients (setup, scenario changes, observation): no faults.
        self.admin_ddb = boto_session().client("dynamodb", region_name=REGION)
        self.admin_ssm = boto_session().client("ssm", region_name=REGION)
        self.admin_ddb.create_table(**status_table_definition(STATUS_TABLE))
        self.admin_ddb.update_time_to_live(TableName=STATUS_TABLE, TimeToLiveSpecification=STATUS_TABLE_TTL)
        self.admin_ddb.create_table(**challenge_table_definition(CHALLENGE_TABLE))
        self.admin_ddb.create_table(**audit_marks_table_definition(AUDIT_MARKS_TABLE))
        self.admin_ddb.update_time_to_live(TableName=AUDIT_MARKS_TABLE, TimeToLiveSpecification=AUDIT_MARKS_TTL)
        self.admin_ddb.create_table(**capacity_table_definition(CAPACITY_TABLE))
        self.admin_ddb.update_time_to_live(TableName=CAPACITY_TABLE, TimeToLiveSpecification=CAPACITY_TABLE_TTL)
        self.put_environment_capacity(environment_capacity or {})
        self.sides: dict[str, ChallengeSide] = {}
        for challenge_id in self.challenge_ids:
            base = v6_config_document(challenge_id) if platform is Platform.V6 else v5_config_document(challenge_id)
            document = {**base, **(config or {}), **(challenge_configs or {}).get(challenge_id, {})}
            queue = FakeQueue(
                queue_name(challenge_id),
                self.clock,
                partial(self._schedule_poll, challenge_id),
                visibility_seconds=self.timings.visibility_seconds,
                max_receive_count=self.timings.max_receive_count,
            )
            self.sides[challenge_id] = ChallengeSide(challenge_id, queue, document)
            self.set_challenge_active(True, challenge_id)
            self.put_config(document, challenge_id)

        # ---- fakes
        self.sqs = FakeSqsClient({queue_name(c): side.queue for c, side in self.sides.items()})
        self.sns_fake = FakeSns()
        for challenge_id, side in self.sides.items():
            self.sns_fake.subscribe(challenge_id, side.queue)
        self.sns = fake_sns_client(self.sns_fake)
        if "sns" in fault_services:
            install_botocore_faults(self.sns, plan, clock=self.clock)
        self.audit = RecordingSqs()
        self.ecs_fake = FakeEcs(
            self.clock,
            lambda at, action, label: self.scheduler.at(at, action, label),
            script_for=self._script_for,
            on_stopped=self._on_stopped,
            container_names=(CONTAINER,),
        )
        self.ecs = fake_ecs_client(self.ecs_fake)
        if "ecs" in fault_services:
            install_botocore_faults(self.ecs, plan, clock=self.clock)
        self.api = FakeSubmissionApi(self.clock)
        self.tokens = FakeTokenProvider()
        transport = with_http_faults(self.api, plan, clock=self.clock, defer=self.scheduler.defer)
        self.review_client = SubmissionApiClient(
            BASE_URL, self.tokens, timeout_seconds=10.0, max_retries=2, transport=transport, sleep=self.clock.sleep
        )
        self.summations = FakeReviewSummationsApi(self.clock)
        v6_transport = with_http_faults(self.summations, plan, clock=self.clock, defer=self.scheduler.defer)
        self.summations_client = ReviewSummationsClient(
            V6_BASE_URL,
            self.tokens,
            timeout_seconds=10.0,
            max_retries=2,
            transport=v6_transport,
            sleep=self.clock.sleep,
        )
        install_launch_interleaving(self.ddb, self.admin_ddb, self.interleaver)

        # ---- the functions
        self.context = FakeLambdaContext()
        for side in self.sides.values():
            side.processor_settings = processor_settings(self, side)
            side.processor = challenge_processor(self, side.processor_settings)
        self.store = StatusStore(STATUS_TABLE, clock=self.clock, dynamodb_client=self.ddb)
        self._completion_deps = completion_dependencies(self)
        self.sweeper = sweeper(self)
        self.router = router(self)

    # ------------------------------------------------------------------ construction
    def _client(self, service: str) -> Any:
        client = boto_session().client(service, region_name=REGION)
        if service in self.fault_services:
            install_botocore_faults(client, self.plan, clock=self.clock)
        return client

    # The first challenge: what the single-challenge cases read and change.
    @property
    def queue(self) -> FakeQueue:
        return self.sides[self.challenge_ids[0]].queue

    @property
    def processor(self) -> ChallengeProcessor:
        processor = self.sides[self.challenge_ids[0]].processor
        assert processor is not None
        return processor

    @property
    def processor_settings(self) -> ChallengeProcessorSettings:
        settings = self.sides[self.challenge_ids[0]].processor_settings
        assert settings is not None
        return settings

    @property
    def config_document(self) -> dict[str, Any]:
        return self.sides[self.challenge_ids[0]].config_document

    @property
    def queues(self) -> list[FakeQueue]:
        return [side.queue for side in self.sides.values()]

    def capacity_store(self, *, admin: bool = False) -> CapacityStore:
        """The capacity table through a function's client (faults) or the operator's (`admin`: none)."""
        client = self.admin_ddb if admin else self.ddb
        return CapacityStore(CAPACITY_TABLE, STATUS_TABLE, clock=self.clock, dynamodb_client=client)

    def environment_capacity(self) -> Any:
        return EnvironmentCapacityLoader(
            CAPACITY_PARAMETER, self.timings.capacity_cache_seconds, self.ssm, clock=self.clock
        ).get

    def put_environment_capacity(self, document: dict[str, Any]) -> None:
        """The operator's put-parameter of `<ssmPrefix>/capacity` (validated as the functions will read it)."""
        self.admin_ssm.put_parameter(
            Name=CAPACITY_PARAMETER,
            Value=EnvironmentCapacity.model_validate(document).to_json(),
            Type="String",
            Overwrite=True,
        )

    def set_challenge_active(self, active: bool, challenge_id: str | None = None) -> None:
        """The router's challenge table item (the operator's write: no faults)."""
        self.admin_ddb.put_item(
            TableName=CHALLENGE_TABLE,
            Item={
                "challengeId": {"S": challenge_id or self.challenge_ids[0]},
                "active": {"BOOL": active},
                "platform": {"S": self.platform.value},
            },
        )

    def put_config(self, document: dict[str, Any], challenge_id: str | None = None) -> None:
        challenge_id = challenge_id or self.challenge_ids[0]
        self.admin_ssm.put_parameter(
            Name=challenge_config_parameter_name(challenge_id),
            Value=json.dumps(document),
            Type="String",
            Overwrite=True,
        )

    # ------------------------------------------------------------------ inputs
    def routed(
        self,
        submission_id: str,
        *,
        offset: int | None = None,
        challenge_id: str | None = None,
        member_id: int = MEMBER_ID,
        phase: ScoringPhase | None = None,
        rerun: bool = False,
    ) -> RoutedSubmission:
        """What the router publishes for a submission (`phase`: a message for that one run, e.g. SYSTEM;
        `rerun`: an operator's rerun, queued after new work)."""
        v6 = self.platform is Platform.V6
        topic = V6_SUBMISSION_TOPIC if v6 else TOPIC
        source = KafkaCoordinates(topic=topic, partition=0, offset=offset if offset is not None else self.next_offset())
        now = datetime.fromtimestamp(self.clock(), tz=UTC)
        extra: dict[str, Any] = {"phase": phase} if phase is not None else {}
        if rerun:
            extra["rerun"] = True
        return RoutedSubmission(
            platform=self.platform,
            member_handle=MEMBER_HANDLE if v6 else None,
            submission_id=submission_id,
            challenge_id=challenge_id or self.challenge_ids[0],
            member_id=member_id,
            url=f"https://{ALLOWED_HOST}/mm/{submission_id}.zip",
            submission_type="Contest Submission",
            submitted_date=now,
            correlation_id=source.correlation_id,
            source=source,
            routed_at=now,
            **extra,
        )

    def next_offset(self) -> int:
        self.kafka_offsets += 1
        return self.kafka_offsets

    def submit_to_queue(
        self,
        submission_id: str,
        *,
        at: float = 0.0,
        challenge_id: str | None = None,
        member_id: int = MEMBER_ID,
        phase: ScoringPhase | None = None,
        rerun: bool = False,
    ) -> None:
        """As the router would have: one routed message on the challenge queue (`at` seconds after the start)."""
        challenge = challenge_id or self.challenge_ids[0]

        def send() -> None:
            routed = self.routed(submission_id, challenge_id=challenge, member_id=member_id, phase=phase, rerun=rerun)
            self.sides[challenge].queue.send(routed.to_json(), attributes=self._attributes(challenge))

        self.scheduler.at(self.clock.start + at, send, f"sqs send {submission_id[:8]}")

    def _attributes(self, challenge_id: str | None = None) -> dict[str, Any]:
        value = challenge_id or self.challenge_ids[0]
        return {CHALLENGE_ID_ATTRIBUTE: {"DataType": "String", "StringValue": value}}

    def submit_to_kafka(
        self, submission_ids: list[str], *, at: float = 0.0, extra: list[KafkaRecord] | None = None
    ) -> None:
        """One Kafka batch with a submission record per id (and any `extra` records)."""
        records = [
            KafkaRecord(self._submission_envelope(sid), offset=self.next_offset(), timestamp=int(self.clock() * 1000))
            for sid in submission_ids
        ]
        for record in extra or []:  # after the submissions in the partition
            record.offset = self.next_offset() if record.offset is None else record.offset
            record.timestamp = record.timestamp or int(self.clock() * 1000)
            records.append(record)
        self.scheduler.at(self.clock.start + at, lambda: self.kafka_batch(records, 0), "kafka batch")

    def _submission_envelope(self, submission_id: str) -> dict[str, Any]:
        url = f"https://{ALLOWED_HOST}/mm/{submission_id}.zip"
        if self.platform is Platform.V5:
            return bus_envelope(
                submission_payload(submission_id=submission_id, challenge_id=self.challenge_ids[0], url=url)
            )
        # What review-api-v6 publishes after the virus scan (v6-platform.md): the envelope and its payload.
        stamp = datetime.fromtimestamp(self.clock(), tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        payload = {
            "submissionId": submission_id,
            "challengeId": self.challenge_ids[0],
            "submissionUrl": url,
            "memberHandle": MEMBER_HANDLE,
            "memberId": "40158994",
            "submittedDate": stamp,
        }
        return {
            "topic": V6_SUBMISSION_TOPIC,
            "originator": "review-api-v6",
            "timestamp": stamp,
            "mime-type": "application/json",
            "payload": payload,
        }

    def kafka_batch(self, records: list[KafkaRecord], attempt: int) -> None:
        try:
            response: dict[str, Any] = dict(self.router.handle(msk_event(records)))  # Kafka: identifiers are dicts
            failed_offsets: set[int | None] = {
                item["itemIdentifier"]["offset"] for item in response.get("batchItemFailures", [])
            }
        except Exception as error:  # the whole batch is retried
            self.crashes.append(f"router: {type(error).__name__}: {error}")
            failed_offsets = {r.offset for r in records}
        # Lambda's Kafka event source re-delivers a partition from its first failed offset on: that record and
        # every later one of the batch, processed or not (one partition in the matrix).
        first_failed = min((o for o in failed_offsets if o is not None), default=None)
        failed = [r for r in records if first_failed is not None and (r.offset or 0) >= first_failed]
        if failed and attempt < self.timings.kafka_max_retries:
            self.scheduler.after(
                self.timings.kafka_retry_seconds * (attempt + 1),
                lambda: self.kafka_batch(failed, attempt + 1),
                "kafka retry",
            )
        for record in records:
            if record in failed:
                continue
            payload = json.loads(record.value_bytes()).get("payload") or {}
            submission_id = (
                payload.get("id") if payload.get("resource") == "submission" else payload.get("submissionId")
            )
            if not submission_id:
                continue
            ids = (self.challenge_ids[0], submission_id)
            rule = self.plan.fire(FaultKind.KAFKA_REDELIVERY, ids=ids, now=self.clock())
            if rule is not None:
                self.scheduler.after(
                    rule.param("delay_seconds", 600.0), partial(self.kafka_batch, [record], 0), "kafka again"
                )

    # ------------------------------------------------------------------ SQS -> challenge function
    def _schedule_poll(self, challenge_id: str, instant: float) -> None:
        if (challenge_id, instant) in self._poll_times:
            return
        self._poll_times.add((challenge_id, instant))
        self.scheduler.at(instant, lambda: self._poll(challenge_id, instant), "sqs poll")

    def _poll(self, challenge_id: str, instant: float) -> None:
        self._poll_times.discard((challenge_id, instant))
        side = self.sides[challenge_id]
        while True:
            batch = side.queue.receive(self.timings.sqs_batch_size)
            if not batch:
                return
            concurrent = []
            for message in batch:
                ids = (challenge_id, submission_of(message.body))
                if self.plan.fire(FaultKind.SQS_DUPLICATE_DELIVERY, ids=ids, now=self.clock()):
                    concurrent.append(message)
            singles = [m for m in batch if m not in concurrent]
            if singles:
                self._invoke_challenge(singles, side)
            for message in concurrent:
                copy = self._duplicate_of(message, side.queue)
                errors = self.interleaver.run(
                    [partial(self._invoke_challenge, [message], side), partial(self._invoke_challenge, [copy], side)]
                )
                self.crashes += [f"interleaved delivery: {e!r}" for e in errors if e is not None]

    def _duplicate_of(self, message: QueuedMessage, queue: FakeQueue) -> QueuedMessage:
        """The second copy SQS hands out: the same body, its own receipt (an independent message here)."""
        copy = QueuedMessage(
            str(uuid.uuid4()),
            message.body,
            message.visible_at,
            message.sent_at,
            receive_count=message.receive_count,
            attributes=dict(message.attributes),
        )
        queue.messages[copy.message_id] = copy
        return copy

    def _invoke_challenge(self, messages: list[QueuedMessage], side: ChallengeSide | None = None) -> None:
        side = side or self.sides[self.challenge_ids[0]]
        assert side.processor is not None
        assert side.processor_settings is not None
        # One handler module, one processor per challenge function: this invocation is the challenge's own.
        challenge_wiring.use_dependencies(
            challenge_wiring.ChallengeDependencies(side.processor_settings, processor=side.processor)
        )
        event = {"Records": [sqs_record(m, side.queue.name) for m in messages]}
        try:
            response = challenge_handler.handler(event, self.context)
            failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        except (Exception, SimulatedCrash) as error:  # the invocation died: every message comes back
            self.crashes.append(f"challenge: {type(error).__name__}")
            failed = {m.message_id for m in messages}
        for message in messages:
            if message.message_id in failed:
                side.queue.return_later(message)
            else:
                side.queue.delete(message.message_id)

    def install_processor(self) -> None:
        """The handler's processor for this environment is ours (clients, clock, metrics)."""
        challenge_wiring.use_dependencies(
            challenge_wiring.ChallengeDependencies(self.processor_settings, processor=self.processor)
        )

    # ------------------------------------------------------------------ ECS -> EventBridge -> completion
    def _script_for(self, env: dict[str, str]) -> TaskScript:
        submission_id = env.get(TaskEnv.SUBMISSION_ID.value, "")
        run_of_task = run_of(submission_id, env.get(TaskEnv.PHASE.value, ""))
        ids = (env.get(TaskEnv.CHALLENGE_ID.value) or self.challenge_ids[0], submission_id, run_of_task)
        script = self.scripts.get(run_of_task) or self.scripts.get(submission_id, TaskScript())
        if self.plan.fire(FaultKind.TASK_FAILED_TO_START, ids=ids, now=self.clock()):
            script = TaskScript(fail_to_start=True, forget_after=script.forget_after)
        rule = self.plan.fire(FaultKind.SCORER_OVERRUN, ids=ids, now=self.clock())
        if rule is not None:
            run = float(rule.params.get("run_seconds", -1))
            script = TaskScript(
                run_seconds=None if run < 0 else run, exit_code=script.exit_code, forget_after=script.forget_after
            )
        rule = self.plan.fire(FaultKind.ECS_FORGETS_STOPPED_TASK, ids=ids, now=self.clock())
        if rule is not None:
            script = TaskScript(
                run_seconds=script.run_seconds,
                exit_code=script.exit_code,
                fail_to_start=script.fail_to_start,
                sidecar=script.sidecar,
                forget_after=rule.param("after_seconds", 60.0),
            )
        return script

    def _on_stopped(self, task: FakeTask) -> None:
        if not task.started_by.startswith(started_by_prefix(ENVIRONMENT)):
            return  # the rule's pattern: only our tasks
        if self.platform is Platform.V6 and task.phase and task.ran_to_completion and task.script.exit_code == 0:
            self._scorer_posts_its_summation(task)
        event = stopped_event(self.ecs_fake.describe(task), self.clock())
        self.stopped_events.append(event)
        challenge_id = task.environment.get(TaskEnv.CHALLENGE_ID.value) or self.challenge_ids[0]
        ids = (challenge_id, task.submission_id, task.arn, run_of(task.submission_id, task.phase))
        now = self.clock()
        delay = self.timings.eventbridge_delay_seconds
        if self.plan.fire(FaultKind.STOPPED_EVENT_LOST, ids=ids, now=now):
            return
        rule = self.plan.fire(FaultKind.STOPPED_EVENT_DELAYED, ids=ids, now=now)
        if rule is not None:
            delay = rule.param("delay_seconds", 1200.0)
        if self.plan.fire(FaultKind.STOPPED_EVENT_REORDERED, ids=ids, now=now):
            # Held back until the next STOPPED event of this submission has been delivered (or an hour).
            self.held_events.setdefault(task.submission_id, []).append(event)
            self.scheduler.after(3600, lambda: self._release_held(task.submission_id), "release held event")
            return
        self.scheduler.after(delay, lambda: self._deliver_stopped(event, task.submission_id), "eventbridge")
        if self.plan.fire(FaultKind.STOPPED_EVENT_DUPLICATE, ids=ids, now=now):
            self.scheduler.after(delay + 2, lambda: self._deliver_stopped(event, task.submission_id), "duplicate")

    def _scorer_posts_its_summation(self, task: FakeTask) -> None:
        """A v6 scorer that finished writes its phase's scores itself (no request of ours, never faulted)."""
        phase = task.phase
        self.summations.add_summation(
            submissionId=task.submission_id,
            aggregateScore=87.5,
            isPassing=True,
            scorecardId=SCORECARD_ID,
            **{ScoringPhase(phase).summation_flag: True},
            metadata={"testType": ScoringPhase(phase).test_type, "testStatus": "SUCCESS", "reportedBy": "scorer"},
        )

    def _deliver_stopped(self, event: dict[str, Any], submission_id: str) -> None:
        self.invoke_completion_async(event)
        self._release_held(submission_id)

    def _release_held(self, submission_id: str) -> None:
        for event in self.held_events.pop(submission_id, []):
            self.scheduler.after(1, partial(self.invoke_completion_async, event), "reordered event")

    def invoke_completion_async(self, event: dict[str, Any], attempt: int = 0) -> None:
        call = CompletionCall(self.clock(), attempt, event)
        self.completion_calls.append(call)
        completion_wiring.use_dependencies(self._completion_deps)
        try:
            call.result = completion_handler.handler(json.loads(json.dumps(event)), self.context)
        except (Exception, SimulatedCrash) as error:
            call.error = f"{type(error).__name__}: {error}"[:300]
            if attempt < len(self.timings.async_retry_delays):
                self.scheduler.after(
                    self.timings.async_retry_delays[attempt],
                    lambda: self.invoke_completion_async(event, attempt + 1),
                    "completion retry",
                )
            else:
                self.completion_dlq.append(event)

    # The sweeper's Lambda client: Invoke(InvocationType=Event) is an async invocation of the completion function.
    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        payload = json.loads(kwargs["Payload"])
        self.scheduler.after(0.5, lambda: self.invoke_completion_async(payload), "synthetic event")
        return {"StatusCode": 202}

    # ------------------------------------------------------------------ the sweeper
    def _sweep(self) -> None:
        try:
            self.sweeper.sweep()
        except Exception as error:  # the next scheduled run is the retry
            self.crashes.append(f"sweeper: {type(error).__name__}: {error}"[:300])
        self.scheduler.at(self.clock() + self.timings.sweep_seconds, self._sweep, "sweep", periodic=True)

    # ------------------------------------------------------------------ running
    def run(self) -> None:
        self.install_processor()
        self.scheduler.at(self.clock.start + self.timings.sweep_seconds, self._sweep, "sweep", periodic=True)
        limit = self.clock.start + self.timings.horizon_seconds
        try:
            while True:
                upcoming = self.scheduler.next_at()
                if upcoming is None or upcoming > limit:
                    break
                if not self.scheduler.busy and self.quiescent():
                    break
                self.scheduler.run_one()
        finally:
            challenge_wiring.use_dependencies(None)
            completion_wiring.use_dependencies(None)

    def quiescent(self) -> bool:
        """Nothing left that could ever change: no pending events but the sweep, no message in any queue, no task
        running, no status item the sweeper still has to look at (`deadlineAt`) or admit (WAITING, ADMITTED)."""
        if not all(queue.empty for queue in self.queues) or self.ecs_fake.running() or self.held_events:
            return False
        # A run WAITING for a slot (or ADMITTED, its message on the way) is work the sweeper's dispatch still does.
        waiting = (SubmissionState.WAITING, SubmissionState.ADMITTED)
        return all(r.deadline_at is None and r.state not in waiting for r in self.records().values())

    # ------------------------------------------------------------------ observing
    def records(self) -> dict[str, LifecycleRecord]:
        """The status items by run id (`<submissionId>#<PHASE>`)."""
        items: list[dict[str, Any]] = []
        for page in self.admin_ddb.get_paginator("scan").paginate(TableName=STATUS_TABLE, ConsistentRead=True):
            items += page.get("Items", [])  # a scan answers at most 1 MB a page: a big world has several
        return {r.run_id: r for r in (record_from_item(item) for item in items)}

    def record_of(self, key: str) -> LifecycleRecord | None:
        """The run named by a run id, or by a submission id when the submission has one run (v5)."""
        records = self.records()
        if RUN_ID_SEPARATOR in key:
            return records.get(key)
        runs = [r for r in records.values() if r.submission_id == key]
        if len(runs) > 1:
            raise AssertionError(f"{key} has {len(runs)} runs: name the run ({[r.run_id for r in runs]})")
        return runs[0] if runs else None

    def started_by_value(self, challenge_id: str | None = None) -> str:
        return started_by(ENVIRONMENT, challenge_id or self.challenge_ids[0])
