"""The matrix's world: the real functions on moto (DynamoDB, SSM) and the fakes, on one virtual clock.

A discrete-event simulation (decision 078). Everything that happens is an event on the `Scheduler`:
- Kafka -> router (Router.handle, real) -> fake SNS -> the challenge queue (FakeQueue: visibility 180 s,
  maxReceiveCount 3 -> DLQ) -> the Lambda SQS poller (batches of 5) -> challenge_lambda.handler (real, batch
  path) -> RunTask on the fake ECS;
- the fake ECS runs each task PROVISIONING -> RUNNING -> STOPPED and puts its STOPPED event on EventBridge ->
  completion_lambda.handler (real) as an async invocation: a failed one is retried at +60 s and +120 s, then
  kept in the completion DLQ;
- the timeout sweeper (real TimeoutSweeper) every 300 s; its synthetic events go the same async way.
A v6 world (`platform=Platform.V6`) hosts a v6 challenge instead: EXAMPLE and PROVISIONAL on each new submission
(two runs, `<submissionId>#<PHASE>`), nanoid submission ids, reports as review-api-v6 summations through the real
`ReviewSummationsClient` on `FakeReviewSummationsApi`, a skipped run handed to the completion function by the
processor's "Run Report Due" invoke (which the world may lose: `lose_report_due_invokes`), and a scorer that
posts its own summation when it exits 0 (as Topcoder's scorers do).
Faults come from one FaultPlan: botocore faults on every AWS client, HTTP faults on the API session, and the
delivery/task faults decided here with `plan.fire`. Wall time never enters: every clock is the virtual one.
"""

from __future__ import annotations

import inspect
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from aws_lambda_powertools import Logger

from challenge_lambda import handler as challenge_handler
from challenge_lambda.launcher import EcsLauncher
from challenge_lambda.processor import ChallengeProcessor
from completion_lambda import handler as completion_handler
from completion_lambda.handler import CompletionDependencies
from fault_injection import FaultKind, FaultPlan, SimulatedCrash, install_botocore_faults, install_http_faults
from mm_adapters.challenge_config import ChallengeConfigLoader
from mm_adapters.status_store import StatusStore
from mm_adapters.topcoder.review_summations import ReviewSummationsClient
from mm_adapters.topcoder.submission_api import SubmissionApiClient
from mm_capacity.config import EnvironmentCapacityLoader
from mm_capacity.store import CAPACITY_TABLE_TTL, CapacityStore, capacity_table_definition
from mm_contracts.models.capacity import EnvironmentCapacity
from mm_contracts.models.lifecycle import LifecycleRecord, SubmissionState
from mm_contracts.models.phase import RUN_ID_SEPARATOR, V6_SUBMISSION_TOPIC, Platform, ScoringPhase, run_id
from mm_contracts.models.routed import KafkaCoordinates, RoutedSubmission
from mm_contracts.models.task import TaskEnv
from mm_contracts.names import (
    CHALLENGE_ID_ATTRIBUTE,
    STATUS_TABLE_PARTITION_KEY,
    capacity_parameter_name,
    challenge_config_parameter_name,
    challenge_config_parameter_prefix,
    started_by,
    started_by_prefix,
)
from mm_contracts.settings import ChallengeProcessorSettings, CompletionSettings, RouterSettings, TimeoutSweeperSettings
from mm_contracts.tables import (
    AUDIT_MARKS_TTL,
    STATUS_TABLE_TTL,
    audit_marks_table_definition,
    challenge_table_definition,
    status_table_definition,
)
from sweeper_lambda.handler import SweeperDependencies
from sweeper_lambda.sweeper import TimeoutSweeper
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
    fake_api_session,
)

REGION = "us-east-1"
ENVIRONMENT = "matrix"
CHALLENGE_ID = "5a0c0f57-8b70-4a2b-9f3e-1c2d3e4f5a6b"
CLUSTER = "mm-scorers"
CLUSTER_ARN = f"arn:aws:ecs:{REGION}:123456789012:cluster/{CLUSTER}"
CONTAINER = "scorer"
STATUS_TABLE = "mm-matrix-status"
CAPACITY_TABLE = "mm-matrix-capacity"
CAPACITY_PARAMETER = capacity_parameter_name()
CHALLENGE_TABLE = "mm-matrix-challenges"
AUDIT_MARKS_TABLE = "mm-matrix-audit-marks"
QUEUE_NAME = f"mm-{ENVIRONMENT}-{CHALLENGE_ID}"
COMPLETION_FUNCTION = f"mm-{ENVIRONMENT}-completion"
REVIEW_TYPE_ID = "c56a4180-65aa-42ec-a945-5fd21dec0503"
REVIEWER_ID = "2b8f3c1e-6a6d-4d2a-9b39-3e1f4b5c6d7e"
ALLOWED_HOST = "topcoder-submissions.s3.amazonaws.com"
TOPIC = "submission.notification.create"
SCORECARD_ID = "Sc0rEcArD-v6_1"
MEMBER_HANDLE = "tourist"
MEMBER_ID = 40_158_994
V6_PHASES = (
    {"phase": "EXAMPLE", "startSeed": 1, "numberOfTests": 10, "onSubmission": True},
    {"phase": "PROVISIONAL", "startSeed": 11, "numberOfTests": 50, "onSubmission": True},
)


def queue_name(challenge_id: str) -> str:
    """A challenge's queue (`mm-<env>-<challengeId>`: the completion function's relaunch template fills it)."""
    return f"mm-{ENVIRONMENT}-{challenge_id}"


def v5_config_document(challenge_id: str = CHALLENGE_ID) -> dict[str, Any]:
    return {
        "challengeId": challenge_id,
        "scorerType": "mm-scorer-java",
        "ecsCluster": CLUSTER,
        "ecsTaskDefinition": "mm-scorer-example:3",
        "scorerContainerName": CONTAINER,
        "timeout": 1800,
        "subnets": ["subnet-0a1b2c3d"],
        "securityGroups": ["sg-0123456789abcdef0"],
        "reviewTypeId": REVIEW_TYPE_ID,
        "reviewerId": REVIEWER_ID,
        "scoreCardId": 30_001_852,
        "reportOnSuccess": True,
    }


def v6_config_document(challenge_id: str = CHALLENGE_ID) -> dict[str, Any]:
    """Two phases per new submission; a success is the scorer's to report (no `reportOnSuccess`)."""
    return {
        "challengeId": challenge_id,
        "platform": "v6",
        "scorerType": "mm-scorer-java",
        "ecsCluster": CLUSTER,
        "ecsTaskDefinition": "mm-scorer-example:3",
        "scorerContainerName": CONTAINER,
        "timeout": 1800,
        "subnets": ["subnet-0a1b2c3d"],
        "securityGroups": ["sg-0123456789abcdef0"],
        "scorecardId": SCORECARD_ID,
        "phases": [dict(phase) for phase in V6_PHASES],
        "reportOnSuccess": False,
    }


@dataclass(frozen=True)
class Timings:
    """The deployed values (common brief); the matrix runs on them, in virtual time."""

    visibility_seconds: int = 180
    max_receive_count: int = 3
    launch_lease_seconds: int = 60
    report_lease_seconds: int = 90
    async_retry_delays: tuple[int, ...] = (60, 120)
    sweep_seconds: int = 300
    reconcile_grace_seconds: int = 900
    sqs_batch_size: int = 5
    eventbridge_delay_seconds: float = 1.0
    kafka_retry_seconds: float = 10.0
    kafka_max_retries: int = 10
    capacity_cache_seconds: int = 60  # every function's cache of the environment's caps parameter
    config_cache_seconds: int = 300  # the completion function's and the sweeper's challenge config cache
    horizon_seconds: float = 3 * 86_400  # a case that is not quiescent by then is stuck


@dataclass
class CompletionCall:
    at: float
    attempt: int
    event: dict[str, Any]
    result: dict[str, Any] | None = None
    error: str | None = None


class Interleaver:
    """Runs deliveries "at once": each in a thread, one thread running at any time, switching at the launch
    claim. Order: every delivery reads up to its claim write, then each writes in turn (and pauses just after),
    then each runs to its end. That is the interleaving in which two deliveries that saw the same state race."""

    BEFORE_WRITE, AFTER_WRITE, END = 1, 2, 3

    @dataclass
    class _Worker:
        fn: Callable[[], object]
        go: threading.Event = field(default_factory=threading.Event)
        yielded: threading.Event = field(default_factory=threading.Event)
        position: int = 0
        error: BaseException | None = None

    def __init__(self) -> None:
        self._workers: dict[int, Interleaver._Worker] = {}
        self.claims_won: list[int] = []  # per concurrent run: how many deliveries' claim writes succeeded

    def claim_won(self) -> None:
        """A delivery's first claim write succeeded (a later one, after the other delivery released, is fair)."""
        worker = self._workers.get(threading.get_ident())
        if worker is not None and worker.position < self.AFTER_WRITE and self.claims_won:
            self.claims_won[-1] += 1

    def pause(self, point: int) -> None:
        worker = self._workers.get(threading.get_ident())
        if worker is None or worker.position >= point:
            return
        worker.position = point
        worker.go.clear()
        worker.yielded.set()
        if not worker.go.wait(timeout=60):
            raise RuntimeError("interleaver: never resumed")

    def run(self, fns: list[Callable[[], object]]) -> list[BaseException | None]:
        workers = [Interleaver._Worker(fn) for fn in fns]
        self.claims_won.append(0)
        threads = []
        for worker in workers:

            def body(w: Interleaver._Worker = worker) -> None:
                self._workers[threading.get_ident()] = w
                w.go.wait()
                try:
                    w.fn()
                except BaseException as error:  # a crash is an outcome here, not an error of the harness
                    w.error = error
                finally:
                    w.position = Interleaver.END
                    w.yielded.set()

            thread = threading.Thread(target=body, daemon=True)
            thread.start()
            threads.append(thread)
        for point in (self.BEFORE_WRITE, self.AFTER_WRITE, self.END):
            for worker in workers:
                while worker.position < point:
                    worker.yielded.clear()
                    worker.go.set()
                    if not worker.yielded.wait(timeout=60):
                        raise RuntimeError("interleaver: a delivery never yielded")
        for thread in threads:
            thread.join(timeout=60)
        self._workers.clear()
        return [w.error for w in workers]


def _is_launch_claim(operation: str, params: dict[str, Any]) -> bool:
    """The conditional write that claims a launch (create LAUNCHING, or re-claim with a new lease)."""
    if operation == "PutItem":
        return (params.get("Item") or {}).get("state", {}).get("S") == "LAUNCHING"
    if operation == "UpdateItem":
        values = json.dumps(params.get("ExpressionAttributeValues") or {})
        return "LAUNCHING" in values and "leaseUntil = " in str(params.get("UpdateExpression", ""))
    return False


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
        session = fake_api_session(self.api)
        install_http_faults(session, plan, clock=self.clock, defer=self.scheduler.defer)
        self.review_client = SubmissionApiClient(
            BASE_URL, self.tokens, timeout_seconds=10.0, max_retries=2, session=session, sleep=self.clock.sleep
        )
        self.summations = FakeReviewSummationsApi(self.clock)
        v6_session = fake_api_session(self.summations)
        install_http_faults(v6_session, plan, clock=self.clock, defer=self.scheduler.defer)
        self.summations_client = ReviewSummationsClient(
            V6_BASE_URL, self.tokens, timeout_seconds=10.0, max_retries=2, session=v6_session, sleep=self.clock.sleep
        )
        self._install_launch_interleaving()

        # ---- the functions
        self.context = FakeLambdaContext()
        for side in self.sides.values():
            side.processor_settings = self._processor_settings(side)
            side.processor = self._processor(side.processor_settings)
        self.store = StatusStore(STATUS_TABLE, clock=self.clock, dynamodb_client=self.ddb)
        self._completion_deps = self._completion_dependencies()
        self.sweeper = self._sweeper()
        self.router = self._router()

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

    def _processor_settings(self, side: ChallengeSide) -> ChallengeProcessorSettings:
        return ChallengeProcessorSettings(
            environment_name=ENVIRONMENT,
            challenge_id=side.challenge_id,
            challenge_config_parameter=challenge_config_parameter_name(side.challenge_id),
            status_table_name=STATUS_TABLE,
            max_receive_count=self.timings.max_receive_count,
            launch_lease_seconds=self.timings.launch_lease_seconds,
            allowed_url_hosts=(ALLOWED_HOST,),
            completion_function_name=COMPLETION_FUNCTION,
            capacity_table_name=CAPACITY_TABLE,
            capacity_parameter_name=CAPACITY_PARAMETER,
            capacity_cache_seconds=self.timings.capacity_cache_seconds,
            challenge_queue_url=side.queue.url,
        )

    def _processor(self, settings: ChallengeProcessorSettings) -> ChallengeProcessor:
        return ChallengeProcessor.from_settings(
            settings,
            metrics=self.metrics,
            logger=Logger(service="challenge-processor"),
            ssm_client=self.ssm,
            dynamodb_client=self.ddb,
            lambda_client=_ProcessorLambda(self),
            sqs_client=self.sqs,
            launcher=EcsLauncher(self.ecs),
            clock=self.clock,
            config_clock=self.clock,
            sleep=self.clock.sleep,  # pacing waits for the next second's RunTask token in virtual time
        )

    def capacity_store(self, *, admin: bool = False) -> CapacityStore:
        """The capacity table through a function's client (faults) or the operator's (`admin`: none)."""
        client = self.admin_ddb if admin else self.ddb
        return CapacityStore(CAPACITY_TABLE, STATUS_TABLE, clock=self.clock, dynamodb_client=client)

    def _environment_capacity(self) -> Any:
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

    def _completion_dependencies(self) -> CompletionDependencies:
        fields = CompletionSettings.model_fields
        values: dict[str, Any] = {
            "environment_name": ENVIRONMENT,
            "status_table_name": STATUS_TABLE,
            "challenge_config_parameter_prefix": "/mm-processor/challenges",
            "submission_api_url": BASE_URL,
            "review_api_url": V6_BASE_URL,
            "report_lease_seconds": self.timings.report_lease_seconds,
            "capacity_table_name": CAPACITY_TABLE,
            "capacity_parameter_name": CAPACITY_PARAMETER,
            "capacity_cache_seconds": self.timings.capacity_cache_seconds,
            "config_cache_seconds": self.timings.config_cache_seconds,
        }
        if "challenge_queue_name_template" in fields:
            values["challenge_queue_name_template"] = f"mm-{ENVIRONMENT}-{{challenge_id}}"
        settings = CompletionSettings(**values)
        offered: dict[str, Any] = {
            "store": StatusStore(STATUS_TABLE, clock=self.clock, dynamodb_client=self.ddb),
            "config_source": ChallengeConfigLoader(
                lambda challenge_id: challenge_config_parameter_name(challenge_id),
                settings.config_cache_seconds,
                self.ssm,
                clock=self.clock,
            ),
            "token_provider": self.tokens,
            "review_api": self.review_client,
            "summations_api": self.summations_client,
            "ecs": self.ecs,
            "metrics_sink": self.metrics,
            "sqs": self.sqs,
            "sqs_client": self.sqs,
            "clock": self.clock,
            "capacity_store": self.capacity_store(),
            "environment_capacity": self._environment_capacity(),
        }
        accepted = inspect.signature(CompletionDependencies.__init__).parameters
        return CompletionDependencies(settings, **{k: v for k, v in offered.items() if k in accepted})

    def _sweeper(self) -> TimeoutSweeper:
        """The sweeper as its handler builds it (`SweeperDependencies`), on the world's clients and clock."""
        settings = TimeoutSweeperSettings(
            environment_name=ENVIRONMENT,
            status_table_name=STATUS_TABLE,
            completion_function_name=COMPLETION_FUNCTION,
            reconcile_grace_seconds=self.timings.reconcile_grace_seconds,
            ecs_cluster_arns=(CLUSTER_ARN,),
            capacity_table_name=CAPACITY_TABLE,
            capacity_parameter_name=CAPACITY_PARAMETER,
            capacity_cache_seconds=self.timings.capacity_cache_seconds,
            challenge_config_parameter_prefix=challenge_config_parameter_prefix(),
            config_cache_seconds=self.timings.config_cache_seconds,
            challenge_queue_name_template=queue_name("{challenge_id}"),
        )
        store = StatusStore(STATUS_TABLE, clock=self.clock, dynamodb_client=self.ddb)
        deps = SweeperDependencies(
            settings,
            store=store,
            ecs=self.ecs,
            lambda_client=self,
            metrics_sink=self.metrics,
            capacity_store=self.capacity_store(),
            config_source=ChallengeConfigLoader(
                challenge_config_parameter_name, settings.config_cache_seconds, self.ssm, clock=self.clock
            ),
            environment_capacity=self._environment_capacity(),
            sqs=self.sqs,
        )
        return deps.sweeper()

    def _router(self) -> Any:
        from router_lambda.router import Router

        settings = RouterSettings(
            environment_name=ENVIRONMENT,
            sns_topic_arn=f"arn:aws:sns:{REGION}:123456789012:mm-{ENVIRONMENT}-submissions",
            challenge_table_name=CHALLENGE_TABLE,
            audit_queue_url=f"https://sqs.{REGION}.amazonaws.com/123456789012/mm-{ENVIRONMENT}-audit",
            audit_marks_table_name=AUDIT_MARKS_TABLE,
            allowed_url_hosts=(ALLOWED_HOST,),
            platforms=(Platform.V5, Platform.V6),
        )

        class _RouterMetrics:
            def __init__(self, sink: RecordingMetrics) -> None:
                self.sink = sink

            def count(self, metric: Any, value: int, *, reason: str | None = None) -> None:
                for _ in range(value):
                    self.sink.count(metric, reason=reason)

        return Router.from_settings(
            settings,
            metrics=_RouterMetrics(self.metrics),
            clock=self.clock,
            sleep=self.clock.sleep,
            jitter=lambda: 0.5,
            sns=lambda: self.sns,
            sqs=lambda: self.audit,
            dynamodb=lambda: self.ddb,
        )

    def _install_launch_interleaving(self) -> None:
        """Pause points for `Interleaver` around the launch claim write (no-ops outside a concurrent delivery)."""
        key = "matrix_params"

        def remember(params: dict[str, Any], context: dict[str, Any], model: Any, **_: Any) -> None:
            context[key] = (model.name, json.loads(json.dumps(params, default=str)))

        def race_point(context: dict[str, Any]) -> bool:
            name, params = context.get(key, ("", {}))
            if not _is_launch_claim(name, params):
                return False
            if name == "PutItem" and "race_point" not in context:
                # Creating an item that exists is a probe that fails whatever happens: the race is the re-claim.
                partition = STATUS_TABLE_PARTITION_KEY
                found = self.admin_ddb.get_item(
                    TableName=params["TableName"], Key={partition: params["Item"][partition]}
                )
                context["race_point"] = "Item" not in found
            return bool(context.get("race_point", True))

        def before(context: dict[str, Any], **_: Any) -> None:
            if race_point(context):
                self.interleaver.pause(Interleaver.BEFORE_WRITE)

        def after(context: dict[str, Any], http_response: Any, **_: Any) -> None:
            if race_point(context):
                if http_response.status_code < 300:
                    self.interleaver.claim_won()
                self.interleaver.pause(Interleaver.AFTER_WRITE)

        events = self.ddb.meta.events
        events.register("before-parameter-build.dynamodb", remember, unique_id="matrix-remember")
        events.register_first("before-call.dynamodb", before, unique_id="matrix-before")
        events.register_last("after-call.dynamodb", after, unique_id="matrix-after")

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
        source = KafkaCoordinates(topic=topic, partition=0, offset=offset if offset is not None else self._offset())
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

    def _offset(self) -> int:
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
            KafkaRecord(self._submission_envelope(sid), offset=self._offset(), timestamp=int(self.clock() * 1000))
            for sid in submission_ids
        ]
        for record in extra or []:  # after the submissions in the partition
            record.offset = self._offset() if record.offset is None else record.offset
            record.timestamp = record.timestamp or int(self.clock() * 1000)
            records.append(record)
        self.scheduler.at(self.clock.start + at, lambda: self._kafka_batch(records, 0), "kafka batch")

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

    def _kafka_batch(self, records: list[KafkaRecord], attempt: int) -> None:
        try:
            response = self.router.handle(msk_event(records))
            failed_offsets = {item["itemIdentifier"]["offset"] for item in response.get("batchItemFailures", [])}
        except Exception as error:  # the whole batch is retried
            self.crashes.append(f"router: {type(error).__name__}: {error}")
            failed_offsets = {r.offset for r in records}
        # Lambda's Kafka event source re-delivers a partition from its first failed offset on: that record and
        # every later one of the batch, processed or not (one partition in the matrix).
        first_failed = min(failed_offsets, default=None)
        failed = [r for r in records if first_failed is not None and (r.offset or 0) >= first_failed]
        if failed and attempt < self.timings.kafka_max_retries:
            self.scheduler.after(
                self.timings.kafka_retry_seconds * (attempt + 1),
                lambda: self._kafka_batch(failed, attempt + 1),
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
                    rule.param("delay_seconds", 600.0), partial(self._kafka_batch, [record], 0), "kafka again"
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
                ids = (challenge_id, _submission_of(message.body))
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
        # One handler module, one processor per challenge function: this invocation is the challenge's own.
        challenge_handler.use_processor(side.processor)
        event = {"Records": [_sqs_record(m, side.queue.name) for m in messages]}
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
        challenge_handler.reset()
        challenge_handler.use_processor(self.processor)

    # ------------------------------------------------------------------ ECS -> EventBridge -> completion
    def _script_for(self, env: dict[str, str]) -> TaskScript:
        submission_id = env.get(TaskEnv.SUBMISSION_ID.value, "")
        run_of_task = _run_of(submission_id, env.get(TaskEnv.PHASE.value, ""))
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
        event = _stopped_event(self.ecs_fake._describe(task), self.clock())
        self.stopped_events.append(event)
        challenge_id = task.environment.get(TaskEnv.CHALLENGE_ID.value) or self.challenge_ids[0]
        ids = (challenge_id, task.submission_id, task.arn, _run_of(task.submission_id, task.phase))
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
        completion_handler.use_dependencies(self._completion_deps)
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
                if not self.scheduler.busy and self._quiescent():
                    break
                self.scheduler.run_one()
        finally:
            challenge_handler.reset()
            completion_handler.use_dependencies(None)

    def _quiescent(self) -> bool:
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
        return {r.run_id: r for r in (StatusStore.record_from_item(item) for item in items)}

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


def _run_of(submission_id: str, phase: str) -> str:
    """A task's run id; a task naming no phase (or an unknown one) is known by its submission id only."""
    try:
        return run_id(submission_id, phase)
    except ValueError:
        return submission_id


class _ProcessorLambda:
    """The challenge processor's Lambda client: its report-due invokes of the completion function (async)."""

    def __init__(self, world: World) -> None:
        self._world = world

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        world = self._world
        world.report_due_invokes.append(json.loads(kwargs["Payload"]))
        if world.lose_report_due_invokes > 0:  # accepted (202), never run: only the sweeper can re-drive it
            world.lose_report_due_invokes -= 1
            return {"StatusCode": 202}
        return world.invoke(**kwargs)


def _submission_of(body: str) -> str:
    try:
        return str(json.loads(body).get("submissionId", ""))
    except (ValueError, AttributeError):
        return ""


def _sqs_record(message: QueuedMessage, queue: str = QUEUE_NAME) -> dict[str, Any]:
    millis = str(int(message.sent_at * 1000))
    return {
        "messageId": message.message_id,
        "receiptHandle": "AQEB" + uuid.uuid4().hex,
        "body": message.body,
        "attributes": {
            "ApproximateReceiveCount": str(message.receive_count),
            "SentTimestamp": millis,
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": millis,
        },
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            }
            for name, value in message.attributes.items()
        },
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:{queue}",
        "awsRegion": REGION,
    }


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: _iso(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_iso(v) for v in value]
    return value


def _stopped_event(described: dict[str, Any], now: float) -> dict[str, Any]:
    """The EventBridge "ECS Task State Change" event ECS puts for a stopped task."""
    detail = _iso(described)
    stamp = _iso(datetime.fromtimestamp(now, tz=UTC))
    detail["updatedAt"] = stamp
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": "123456789012",
        "time": stamp,
        "region": REGION,
        "resources": [detail["taskArn"]],
        "detail": detail,
    }
