"""The local pipeline engine: the whole system on one machine, on the embedded AWS emulator.

    records --(MSK events)--> router worker --SNS--> per-challenge queues --(SQS ESM)--> challenge workers
        --RunTask--> fake Fargate (a real scorer process) --STOPPED event--> EventBridge rule --> SQS
        --> completion worker --> Topcoder stand-in;   sweeper worker on a schedule --StopTask--> fake Fargate
        (and, for a STOPPED event never processed: DescribeTasks, then Invoke(Event) --> fake Lambda --> the
        completion rule target's queue --> completion worker)

The engine plays the AWS services that moto cannot run: the event source mappings (Kafka and SQS), the
rule's Lambda target, the schedule, Lambda's asynchronous Invoke, and Fargate. Everything the functions do
goes through their real handlers in their own processes, against resources created from the wiring plan.
"""

from __future__ import annotations

import functools
import json
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fault_injection import BOTOCORE_KINDS, FAULT_PLAN_ENV, HTTP_KINDS, FaultKind, FaultPlan
from infrastructure.config import EnvironmentConfig
from infrastructure.wiring import CHALLENGE_BATCH_SIZE, WiringPlan
from local_pipeline.awsenv import LocalAws
from local_pipeline.fargate import ALL_CHALLENGES, TASK_FAULTS, FakeFargate, TaskDefinitionSim
from local_pipeline.kafka import FeedStats, KafkaFeeder, KafkaMessage, assign_to_topics, on_failure_offsets
from local_pipeline.lambda_endpoint import FakeLambda
from local_pipeline.limits import (
    DEFAULT_STALL_SECONDS,
    SETTLE_FLOOR_SECONDS,
    SETTLE_MARGIN_SECONDS,
    default_hard_cap_seconds,
)
from local_pipeline.provision import (
    ChallengeResources,
    FunctionSpec,
    LocalDeviations,
    LocalResources,
    TopcoderEndpoints,
    provision,
)
from local_pipeline.scenario import SCORER_SCRIPT, InputRecord, Scenario
from local_pipeline.tracker import FINAL_STATES, Observations, RecordResult, classify, violations
from local_pipeline.workers import FunctionWorker, Invocation, WorkerSpec, runtime_env, start_all, stop_all
from mm_adapters.status_store import StatusStore
from mm_contracts.models.bus import FlatSubmission, SubmissionPayload
from mm_contracts.models.phase import V6_SUBMISSION_ID, Platform, ScoringPhase, run_id, run_ids_of
from mm_contracts.models.task import TaskEnv, TaskTag
from topcoder_standin import TopcoderStandIn

ProgressCallback = Callable[[int, int, dict[str, int]], None]

ESM_KEY = "local-esm"  # the event source mappings, the rule target and the schedule (AWS's side)
FARGATE_KEY = "local-fargate"  # the fake ECS control plane emitting events
ECS_AGENT_KEY = "local-ecs-agent"  # resolving a task definition's secrets from SSM
_ENGINE_KEYS = frozenset({ESM_KEY, FARGATE_KEY, ECS_AGENT_KEY, "local-engine"})
_OBSERVE_INTERVAL = 0.25
ENGINE_FAULTS = frozenset({FaultKind.SQS_DUPLICATE_DELIVERY, FaultKind.KAFKA_REDELIVERY})  # the engine plays them
DEFAULT_REDELIVERY_DELAY_SECONDS = 2.0  # kafka-redelivery (deployed: minutes or hours)


def function_access_key(function_name: str, environment: str) -> str:
    """Per-function fake access key, so the request counter can attribute every AWS call (the environment in
    it: two environments side by side in one emulator are counted apart)."""
    prefix = f"mm-{environment}-"
    short = function_name[len(prefix) :] if function_name.startswith(prefix) else function_name
    return f"local-{environment}-{short}"


LOCAL_ENDPOINT_NAMES = ("AWS_ENDPOINT_URL_ECS", "AWS_ENDPOINT_URL_LAMBDA")  # the fake Fargate and the fake Lambda


def function_environment(
    spec: FunctionSpec, aws: LocalAws, ecs_endpoint: str, environment: str, lambda_endpoint: str | None = None
) -> dict[str, str]:
    """The complete environment of one worker process: the function's own (as the stack sets it), what
    the Lambda runtime adds, and the local endpoints and fake credentials (`local_env_names`)."""
    env = {
        **spec.env(),
        **runtime_env(spec.name, spec.memory_mb),
        **aws.credentials_env(function_access_key(spec.name, environment)),
        "AWS_ENDPOINT_URL_ECS": ecs_endpoint,
    }
    if lambda_endpoint is not None:
        env["AWS_ENDPOINT_URL_LAMBDA"] = lambda_endpoint
    return env


def local_env_names(spec: FunctionSpec, aws: LocalAws) -> frozenset[str]:
    """Names in a worker's environment that the runtime or the emulator adds (not the stack's)."""
    return frozenset({*runtime_env(spec.name, spec.memory_mb), *aws.credentials_env("any"), *LOCAL_ENDPOINT_NAMES})


@dataclass
class WorkerStats:
    name: str
    invocations: int
    errors: int
    cold_starts: int
    init_ms: list[float]
    durations_ms: list[float] = field(default_factory=list)


@dataclass
class RunOutcome:
    """Everything the report needs, collected before the emulator goes away."""

    environment: str
    records: list[RecordResult]
    violations: list[str]
    api_violations: list[dict[str, Any]]
    secret_leaks: list[str]
    event_errors: list[str]
    started_at: float
    feeding_started_at: float
    finished_at: float
    deadline_hit: bool  # the hard cap passed
    feed: FeedStats
    aws_calls: dict[str, dict[str, int]]
    workers: list[WorkerStats]
    deviations: LocalDeviations
    log_dir: Path
    dead_letter_counts: dict[str, int]
    completion_dlq_count: int
    tasks_started: int
    run_task_calls: int
    routed_submissions: int
    function_keys: dict[str, str]
    lost_stopped_events: list[str] = field(default_factory=list)  # task ARNs (the lose-stopped-event fault)
    async_invocations: int = 0  # Invoke(Event) calls the fake Lambda accepted (the sweeper's reconciliation)
    stalled: bool = False  # no record changed state for `stall_seconds`
    busy_at_stall: str | None = None  # what was still in flight when the run stalled
    deadline_seconds: float = 0.0  # the hard cap in force
    stall_seconds: float = 0.0
    settle_seconds: float = 0.0  # how long the run waited, quiet, for late commits before reading the API
    # review-api-v6 on the stand-in: every summation as it ended, and the calls by method (decision 090)
    summations: list[dict[str, Any]] = field(default_factory=list)
    summation_calls: dict[str, int] = field(default_factory=dict)
    # Capacity (decision 098): the most tasks not yet STOPPED at any one instant, per challenge and in total
    # (`fargate.ALL_CHALLENGES`), exact, from the fake Fargate; the caps in force at the start (the configured
    # ones: challenge id -> maxRunningTasks, ALL_CHALLENGES -> the environment's); slots still held at the end.
    running_most: dict[str, int] = field(default_factory=dict)
    caps: dict[str, int] = field(default_factory=dict)
    slots_held_at_end: dict[str, int] = field(default_factory=dict)  # pool sort key -> used (non-zero only)

    @property
    def cap_violations(self) -> list[str]:
        """A challenge (or the environment) that ran more tasks at once than its cap allows: never expected."""
        return [
            f"{'the environment' if key == ALL_CHALLENGES else 'challenge ' + key} ran {most} tasks at once, "
            f"cap {self.caps[key]}"
            for key, most in sorted(self.running_most.items())
            if key in self.caps and most > self.caps[key]
        ]

    @property
    def unaccounted(self) -> list[RecordResult]:
        return [r for r in self.records if r.state not in FINAL_STATES]

    @property
    def quiescent(self) -> bool:
        """The run ended quiet and settled (not at the stall limit or the hard cap): late commits were seen."""
        return not self.deadline_hit and not self.stalled

    @property
    def ok(self) -> bool:
        return (
            self.quiescent
            and not self.unaccounted
            and not self.violations
            and not self.cap_violations
            and not self.slots_held_at_end
            and not self.api_violations
            and not self.secret_leaks
        )


def _v6_submission(obj: dict[str, Any]) -> tuple[str, str, int] | None:
    """(submission id, challenge id, member id) of a v6 `marathonmatch.submission.received` record (the envelope
    or the bare payload), else None. Only what the engine needs to seed the stand-in and match scenario ids: the
    router is the one that validates the record."""
    inner = obj.get("payload")
    payload: dict[str, Any] = inner if isinstance(inner, dict) else obj
    submission_id, challenge_id, member_id = (payload.get(k) for k in ("submissionId", "challengeId", "memberId"))
    if not (isinstance(submission_id, str) and V6_SUBMISSION_ID.match(submission_id)) or not challenge_id:
        return None
    try:
        return submission_id, str(challenge_id), int(str(member_id))
    except ValueError:
        return None


def submission_of(value: bytes, config: EnvironmentConfig) -> tuple[str, str, int] | None:
    """(submission id, v5 challenge id, member id) of a well-formed submission record, else None."""
    try:
        obj = json.loads(value)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    v6 = _v6_submission(obj)
    if v6 is not None:
        return v6
    try:
        payload = obj.get("payload")
        if isinstance(payload, dict):
            fields: Any = SubmissionPayload.model_validate(payload)
        elif "resource" not in obj:
            fields = FlatSubmission.model_validate(obj)
        else:
            return None
    except ValidationError:
        return None
    challenge_id = str(fields.challenge_id)
    if challenge_id.isdigit():
        legacy = int(challenge_id)
        match = next((c for c in config.challenges if c.legacy_id == legacy), None)
        challenge_id = match.challenge_id if match else (fields.v5_challenge_id or challenge_id)
    return str(fields.id), challenge_id, int(fields.member_id)


# review-api-v6's phase flags, in the order a summation is read (a summation sets exactly one).
_PHASE_OF_FLAG = {phase.summation_flag: phase for phase in ScoringPhase}
V6_API_PREFIX = "/v6"


def review_api_url(standin: TopcoderStandIn) -> str:
    """The stand-in's review-api-v6 base URL (what REVIEW_API_URL holds), `/v6` included."""
    return standin.v6_base_url


def v6_summations(standin: TopcoderStandIn) -> list[dict[str, Any]]:
    """The review-api-v6 summations the stand-in holds (each as last created or updated)."""
    return standin.summations


def summation_run_id(summation: Any) -> str | None:
    """`<submissionId>#<PHASE>` of a v6 review summation (its phase flag), else None."""
    if not isinstance(summation, dict) or not summation.get("submissionId"):
        return None
    phase = next((p for flag, p in _PHASE_OF_FLAG.items() if summation.get(flag) is True), None)
    return run_id(str(summation["submissionId"]), phase) if phase is not None else None


def summation_calls(standin: TopcoderStandIn) -> dict[str, int]:
    """review-api-v6 summation calls the stand-in answered, by method (GET lists, POST creates, PATCH/PUT update)."""
    calls: dict[str, int] = {}
    for request in standin.requests:
        if request.path.startswith(f"{V6_API_PREFIX}/reviewSummations"):
            calls[request.method] = calls.get(request.method, 0) + 1
    return calls


def _is_summation_create(request: Any) -> bool:
    """An answered-2xx POST /v6/reviewSummations: a summation created (a second one for a run is a violation)."""
    return (
        request.method == "POST"
        and request.path.endswith("/reviewSummations")
        and request.path.startswith(V6_API_PREFIX)
        and 200 <= request.status < 300
    )


def task_run_key(overrides: dict[str, Any], tags: list[dict[str, str]], submission_id: str) -> str:
    """The run id of a task from its phase (overrides, then the `Phase` tag), or the bare submission id when the
    task names no phase (the submission's single run: the completion function's fallback, decision 084)."""
    phase: str | None = None
    for container in overrides.get("containerOverrides") or []:
        for entry in container.get("environment") or []:
            if entry.get("name") == TaskEnv.PHASE.value:
                phase = str(entry.get("value") or "") or None
    if phase is None:
        phase = next((t["value"] for t in tags if t.get("key") == TaskTag.PHASE.value and t.get("value")), None)
    try:
        return run_id(submission_id, phase) if phase else submission_id
    except ValueError:
        return submission_id


def _sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """A ReceiveMessage result in the shape the SQS event source hands to Lambda."""
    attributes = {
        name: str(message.get("MessageAttributes", {}).get(name, {}).get("StringValue", ""))
        for name in message.get("MessageAttributes", {})
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: {
                "stringValue": value,
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": message["MessageAttributes"][name].get("DataType", "String"),
            }
            for name, value in attributes.items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def scheduled_event(rule_name: str, region: str, account: str) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "version": "0",
        "id": f"local-{time.time_ns()}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": now,
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account}:rule/{rule_name}"],
        "detail": {},
    }


class LocalPipeline:
    """Start with `with LocalPipeline(config) as pipeline:`, then `pipeline.run(records, scenario)`."""

    def __init__(
        self,
        config: EnvironmentConfig,
        *,
        deviations: LocalDeviations | None = None,
        log_dir: Path | None = None,
        scorer_command: tuple[str, ...] | None = None,
        max_running_tasks: int = 8,
        partitions: int = 1,
        aws: LocalAws | None = None,
    ) -> None:
        self.config = config
        self.plan = WiringPlan(config)
        self.deviations = deviations or LocalDeviations()
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="mm-local-run-"))
        self.scorer_command = scorer_command or (sys.executable, str(SCORER_SCRIPT))
        self.max_running_tasks = max_running_tasks
        self.partitions = partitions
        # An emulator passed in is shared with other environments (`local run --env a --env b`) and outlives
        # this pipeline: every resource name carries the environment, so nothing is shared but the server.
        self.aws = aws or LocalAws(config.region)
        self._owns_aws = aws is None
        self._failure_keys_seen: set[str] = set()  # failure-bucket objects already observed
        self.standin: TopcoderStandIn | None = None
        self.fargate: FakeFargate | None = None
        self.lambda_endpoint: FakeLambda | None = None
        self.resources: LocalResources | None = None
        self.workers: dict[str, FunctionWorker] = {}
        self.worker_specs: dict[str, WorkerSpec] = {}
        self._token = ""
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._durations: dict[str, list[float]] = {}
        self._durations_lock = threading.Lock()
        self.started_at = 0.0
        self.fault_plan = FaultPlan()
        self.delivery_plan = FaultPlan()  # the kinds the engine's event source mappings play
        self.twins: dict[str, FunctionWorker] = {}  # second challenge-processor instances (SQS duplicates)
        self._worker_plan_installed = False
        self.busy_at_stall: str | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LocalPipeline:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.started_at = time.time()
        if self.log_dir.exists():
            shutil.rmtree(self.log_dir, ignore_errors=True)
        (self.log_dir / "functions").mkdir(parents=True, exist_ok=True)
        if self._owns_aws:
            self.aws.start()
        self.standin = TopcoderStandIn().start()
        self._token = self.standin.issue_token("mm-processor-local")
        self.resources = provision(
            self.plan,
            self.aws,
            TopcoderEndpoints(self.standin.base_url, self.standin.token_url, self._token, review_api_url(self.standin)),
            self.deviations,
        )
        events = self.aws.client("events", FARGATE_KEY)
        ssm = self.aws.client("ssm", ECS_AGENT_KEY)

        def emit(entry: dict[str, Any]) -> None:
            response = events.put_events(Entries=[entry])
            if response.get("FailedEntryCount"):
                raise RuntimeError(f"PutEvents failed: {response.get('Entries')}")

        def resolve_secret(parameter: str) -> str:
            return str(ssm.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"])

        self.fargate = FakeFargate(
            cluster_arn=self.config.ecs.cluster_arn,
            task_definitions=self._task_definitions(),
            emit_event=emit,
            resolve_secret=resolve_secret,
            log_dir=self.log_dir / "tasks",
            counter=self.aws.counter,
            max_running_tasks=self.max_running_tasks,
            region=self.config.region,
            account=self.config.account,
            secret_values=lambda: [self._token],
        ).start()
        self.lambda_endpoint = FakeLambda(counter=self.aws.counter).start()
        completion_target = self.aws.client("sqs", ESM_KEY)
        events_queue_url = self.resources.completion_events_queue_url

        def deliver_to_completion(payload: bytes) -> None:
            # Where the completion rule's target puts events: the same worker, retries and DLQ.
            completion_target.send_message(QueueUrl=events_queue_url, MessageBody=payload.decode())

        self.lambda_endpoint.register(self.plan.names.completion_function, deliver_to_completion)
        for spec in self.resources.functions.values():
            worker_spec = self._worker_spec(spec.name)
            self.worker_specs[spec.name] = worker_spec
            self.workers[spec.name] = FunctionWorker(worker_spec)
        start_all(self.workers.values())

    def _task_definitions(self) -> list[TaskDefinitionSim]:
        assert self.standin is not None
        assert self.resources is not None
        definitions = []
        for challenge in self.config.challenges:
            # What the scorer's own task definition sets: where it posts its results (v5: a review; v6: the
            # run's review summation, decision 090) and the identifiers it posts with.
            if challenge.served_by is Platform.V6:
                reporting: dict[str, object] = {
                    "MM_REVIEW_API_URL": review_api_url(self.standin),
                    "MM_SUMMATION_SCORECARD_ID": challenge.scorecard_id,
                }
            else:
                reporting = {
                    "MM_SUBMISSION_API_URL": self.standin.base_url,
                    "MM_REVIEW_TYPE_ID": challenge.review_type_id,
                    "MM_REVIEWER_ID": challenge.reviewer_id,
                    "MM_SCORECARD_ID": challenge.score_card_id,
                    "MM_TEST_TYPE": challenge.test_type,
                }
            environment = {name: str(value) for name, value in reporting.items() if value is not None}
            definitions.append(
                TaskDefinitionSim(
                    arn=challenge.task_definition_arn,
                    container_name=challenge.scorer_container_name,
                    command=self.scorer_command,
                    environment={**environment, "PYTHONDONTWRITEBYTECODE": "1"},
                    # As the task definition's `secrets` would: valueFrom the token parameter.
                    secrets={"MM_M2M_TOKEN": self.resources.token_parameter_name},
                    cpu=str(challenge.cpu or 1024),
                    memory=str(challenge.memory_mb or 2048),
                )
            )
        return definitions

    def _worker_spec(self, function_name: str) -> WorkerSpec:
        assert self.resources is not None
        assert self.fargate is not None
        assert self.lambda_endpoint is not None
        spec = self.resources.functions[function_name]
        env = function_environment(
            spec, self.aws, self.fargate.endpoint, self.config.environment, self.lambda_endpoint.endpoint
        )
        role = (
            "completion"
            if spec.name == self.plan.names.completion_function
            else "sweeper"
            if spec.name == self.plan.names.sweeper_function
            else "router"
            if spec.name == self.plan.names.router_function
            else "challenge"
        )
        setup_args: dict[str, Any] = {"role": role}
        if role == "sweeper" and self.deviations.sweeper_deadline_advance_seconds:
            setup_args["advance_seconds"] = self.deviations.sweeper_deadline_advance_seconds
        setup = "local_pipeline.hooks.worker_setup"
        return WorkerSpec(
            function_name=spec.name,
            handler=spec.handler,
            env=env,
            timeout_seconds=spec.timeout_seconds,
            memory_mb=spec.memory_mb,
            log_path=str(self.log_dir / "functions" / f"{spec.name}.log"),
            setup=setup,
            setup_args=setup_args,
        )

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads = []
        if self.fargate is not None:
            self.fargate.stop()
        stop_all([*self.workers.values(), *self.twins.values()])
        if self.lambda_endpoint is not None:
            self.lambda_endpoint.stop()
        if self.standin is not None:
            self.standin.stop()
        if self._owns_aws:
            self.aws.stop()

    # ------------------------------------------------------------------ invoking
    def _invoke(self, function_name: str, event: dict[str, Any]) -> Invocation:
        result = self.workers[function_name].invoke(event)
        with self._durations_lock:
            self._durations.setdefault(function_name, []).append(result.duration_ms)
        return result

    def _thread(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _poll_challenge_queue(self, challenge: ChallengeResources) -> None:
        """The SQS event source mapping of one challenge processor (ReportBatchItemFailures)."""
        sqs = self.aws.client("sqs", ESM_KEY)
        while not self._stop.is_set():
            messages = sqs.receive_message(
                QueueUrl=challenge.queue_url,
                MaxNumberOfMessages=CHALLENGE_BATCH_SIZE,
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                continue
            event = {"Records": [_sqs_record(m, challenge.queue_arn, self.config.region) for m in messages]}
            twin = self._duplicate_delivery(challenge, messages)
            result = self._invoke(challenge.function_name, event)
            if twin is not None:
                twin.join()
            ids = {m["MessageId"] for m in messages}
            if result.ok:
                payload = result.payload if isinstance(result.payload, dict) else {}
                failures = payload.get("batchItemFailures") or []
                failed = {str(f.get("itemIdentifier")) for f in failures if isinstance(f, dict)}
                if not failed <= ids:
                    failed = ids  # an unknown identifier fails the whole batch, as Lambda treats it
            else:
                failed = ids
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                sqs.delete_message_batch(
                    QueueUrl=challenge.queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )
            # Failed messages stay in flight until the visibility timeout, then SQS redelivers them
            # (and after maxReceiveCount receives moves them to the challenge DLQ).

    def _duplicate_delivery(self, challenge: ChallengeResources, messages: list[dict[str, Any]]) -> Any:
        """sqs-duplicate-delivery: the chosen messages are received by a second instance at the same time
        (SQS's at-least-once delivery); returns the thread to join, or None."""
        plan = self.delivery_plan
        if not plan.has(FaultKind.SQS_DUPLICATE_DELIVERY) or challenge.function_name not in self.twins:
            return None
        now = time.time()
        duplicated = [
            m
            for m in messages
            if plan.fire(FaultKind.SQS_DUPLICATE_DELIVERY, ids=self._message_ids(m, challenge.challenge_id), now=now)
        ]
        if not duplicated:
            return None
        event = {"Records": [_sqs_record(m, challenge.queue_arn, self.config.region) for m in duplicated]}
        twin = self.twins[challenge.function_name]
        thread = threading.Thread(target=twin.invoke, args=(event,), name="sqs-duplicate", daemon=True)
        thread.start()
        return thread

    def _poll_completion_events(self) -> None:
        """The completion rule's target: each matched event is one invocation (retried, then the DLQ)."""
        assert self.resources is not None
        sqs = self.aws.client("sqs", ESM_KEY)
        url = self.resources.completion_events_queue_url
        name = self.plan.names.completion_function
        while not self._stop.is_set():
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
            ).get("Messages", [])
            for message in messages:
                try:
                    event = json.loads(message["Body"])
                except ValueError:
                    continue  # left for redrive to the DLQ
                # moto's default SQS delivery template drops the envelope's `account`; AWS always sends it.
                # (Only on an EventBridge event: a "Run Report Due" invoke payload is passed as it was sent.)
                if isinstance(event, dict) and event.get("source") == "aws.ecs":
                    event.setdefault("account", self.config.account)
                if self._invoke(name, event).ok:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def _sweep_on_schedule(self) -> None:
        name = self.plan.names.sweeper_function
        while not self._stop.wait(self.deviations.sweep_interval_seconds):
            self._invoke(
                name, scheduled_event(self.plan.names.sweeper_schedule, self.config.region, self.config.account)
            )

    # ------------------------------------------------------------------ observing
    def _put_failure_record(self, record: dict[str, Any]) -> None:
        """The S3 on-failure destination, as the event source mapping writes to it (one object per batch)."""
        assert self.resources is not None
        spans = record["KafkaBatchInfo"]["recordsInfo"]
        now = datetime.now(tz=UTC)
        key = f"aws/lambda/{self.plan.names.router_function}/{next(iter(spans))}/{now:%Y/%m/%d}/{uuid.uuid4()}"
        self.aws.client("s3", ESM_KEY).put_object(
            Bucket=self.resources.router_failure_bucket, Key=key, Body=json.dumps(record).encode()
        )

    def _new_failure_records(self) -> list[str]:
        """Objects put into the failure bucket since the last look (the bucket keeps them, like AWS's)."""
        assert self.resources is not None
        s3 = self.aws.client("s3")
        bodies: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.resources.router_failure_bucket):
            for item in page.get("Contents", []):
                if item["Key"] not in self._failure_keys_seen:
                    self._failure_keys_seen.add(item["Key"])
                    body = s3.get_object(Bucket=self.resources.router_failure_bucket, Key=item["Key"])["Body"]
                    bodies.append(body.read().decode())
        return bodies

    def _drain(self, sqs: Any, url: str, max_receives: int = 100) -> list[str]:
        """Up to `max_receives` x 10 messages (the rest next look: a busy router must not hold the look up)."""
        bodies: list[str] = []
        for _ in range(max_receives):
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not messages:
                return bodies
            bodies += [m["Body"] for m in messages]
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        return bodies

    def _peek_dlq(self, sqs: Any, url: str, expected: int) -> list[str]:
        """Read a DLQ without consuming it (visibility 0), until every message was seen once."""
        seen: dict[str, str] = {}
        for _ in range(max(3, expected)):
            for m in sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=0
            ).get("Messages", []):
                seen[m["MessageId"]] = m["Body"]
            if len(seen) >= expected:
                break
        return list(seen.values())

    def _queue_depth(self, sqs: Any, url: str) -> int:
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def _read_lifecycle(self, ddb: Any, obs: Observations, pending: set[str] | None) -> None:
        """The status items of every run the routed submissions can have (`run_ids_of`), read through the
        store itself (BatchGetItem); only the submissions in `pending` once some are final."""
        assert self.resources is not None
        submissions = {str(r.get("submissionId")) for r in obs.routed.values() if r.get("submissionId")}
        if pending is not None:
            submissions &= pending
        store = StatusStore(self.resources.status_table, dynamodb_client=ddb)
        ids = [key for submission in sorted(submissions) for key in run_ids_of(submission)]
        try:
            found = store.get_many(ids)
        except ValidationError:  # an item mid-write by another version: next look
            return
        obs.lifecycle.update(found)

    def _observe(
        self,
        sqs: Any,
        ddb: Any,
        obs: Observations,
        dlq_counts: dict[str, int],
        pending: set[str] | None = None,
        drain_limit: int = 100,
    ) -> None:
        assert self.resources is not None
        now = time.time()
        for body in self._drain(sqs, self.resources.audit_queue_url, drain_limit):
            try:
                obs.add_audit(json.loads(body))
            except (ValueError, TypeError):
                continue
        for body in self._drain(sqs, self.resources.tap_queue_url, drain_limit):
            try:
                obs.add_routed(json.loads(body), now)
            except (ValueError, TypeError):
                continue
        for body in self._new_failure_records():
            obs.router_failed.update(on_failure_offsets(body))
        if obs.routed:
            self._read_lifecycle(ddb, obs, pending)
            for challenge in self.resources.challenges.values():
                count = int(
                    sqs.get_queue_attributes(
                        QueueUrl=challenge.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
                    )["Attributes"]["ApproximateNumberOfMessages"]
                )
                if count != dlq_counts.get(challenge.challenge_id, 0):
                    dlq_counts[challenge.challenge_id] = count
                    for body in self._peek_dlq(sqs, challenge.dlq_url, count):
                        try:
                            message = json.loads(body)
                            submission_id, phase = str(message.get("submissionId")), message.get("phase")
                            key = run_id(submission_id, phase) if phase else submission_id
                        except (ValueError, AttributeError):
                            continue
                        obs.dead_letters[key] = challenge.challenge_id

    def _observe_api_and_tasks(self, obs: Observations) -> None:
        """What the API received and the tasks the fake Fargate started (in-process, read whole each time)."""
        assert self.standin is not None
        assert self.fargate is not None
        reviews: dict[str, list[dict[str, Any]]] = {}
        for review in self.standin.reviews:
            reviews.setdefault(str(review.get("submissionId")), []).append(review)
        summations: dict[str, list[dict[str, Any]]] = {}
        for summation in v6_summations(self.standin):
            key = summation_run_id(summation)
            if key is not None:
                summations.setdefault(key, []).append(summation)
        posts: dict[str, int] = {}
        for request in self.standin.requests:
            key = summation_run_id(request.json) if _is_summation_create(request) else None
            if key is not None:
                posts[key] = posts.get(key, 0) + 1
        tasks: dict[str, list[str]] = {}
        for task in list(self.fargate.tasks.values()):
            if task.submission_id:
                tasks.setdefault(task_run_key(task.overrides, task.tags, task.submission_id), []).append(task.arn)
        obs.reviews, obs.summations, obs.summation_posts, obs.tasks = reviews, summations, posts, tasks

    @staticmethod
    def _progress_signature(results: list[RecordResult], feed: FeedStats) -> tuple[Any, ...]:
        """Changes whenever any record moves (state, reason, lifecycle, report, tasks, reviews) or the feed does."""
        return (
            feed.invocations,
            feed.retries,
            tuple(
                (r.state, r.reason, r.lifecycle_state, r.report_status, r.task_count, len(r.reviews)) for r in results
            ),
        )

    def settle_seconds(self) -> float:
        """How long a quiet pipeline is watched before the report is read: the slowest configured late landing
        (an API commit delay, a delayed STOPPED event) plus a margin, and never less than the floor."""
        slowest = max(
            self.standin.slowest_delay if self.standin is not None else 0.0,
            self.fargate.slowest_event_delay if self.fargate is not None else 0.0,
        )
        return max(SETTLE_FLOOR_SECONDS, slowest + SETTLE_MARGIN_SECONDS) if slowest else SETTLE_FLOOR_SECONDS

    def _busy(self, sqs: Any) -> str | None:
        """What is still in flight (None: quiet): challenge queues and the completion target, a task running or
        a STOPPED event held back, an API request unanswered. Named, so a run that never goes quiet says why."""
        assert self.resources is not None
        assert self.fargate is not None
        assert self.standin is not None
        if self.standin.in_flight():
            return "a Topcoder API request is unanswered"
        if self.fargate.events_in_flight():
            return "a STOPPED event is held back (delayed)"
        for challenge in self.resources.challenges.values():
            depth = self._queue_depth(sqs, challenge.queue_url)
            if depth:
                return f"{depth} message(s) in the queue of challenge {challenge.challenge_id}"
        depth = self._queue_depth(sqs, self.resources.completion_events_queue_url)
        if depth:
            return f"{depth} event(s) waiting for the completion function"
        running = [t for t in list(self.fargate.tasks.values()) if t.last_status != "STOPPED"]
        if running:
            return f"{len(running)} task(s) not STOPPED (e.g. {running[0].arn})"
        return None

    def _own_calls(self) -> dict[str, dict[str, int]]:
        """AWS calls by caller: this environment's functions, and the engine's own keys. On an emulator shared
        with other environments the engine's keys (ESM, fake Fargate, ECS agent) count every environment's."""
        own = {function_access_key(name, self.config.environment) for name in self.workers}
        return {
            caller: services
            for caller, services in self.aws.counter.by_caller().items()
            if caller in own or not caller.startswith("local-") or caller in _ENGINE_KEYS
        }

    def _quiet(self, sqs: Any) -> bool:
        return self._busy(sqs) is None

    # ------------------------------------------------------------------ run
    def apply_scenario(self, scenario: Scenario) -> FaultPlan:
        """Scorer behaviours to the fake Fargate; the scenario's faults as ONE `fault_injection.FaultPlan`
        (windows from now, the start of the feed), each kind to whoever injects it (decision 079): AWS kinds
        and the crash after a review POST to the workers (`MM_FAULT_PLAN`, installed on the handlers'
        clients), Topcoder kinds to the stand-in, task and STOPPED-event kinds to the fake Fargate, and the
        delivery kinds (SQS duplicates, Kafka re-delivery) to the engine's event source mappings."""
        assert self.fargate is not None
        assert self.standin is not None
        for target, behaviour in scenario.scorers.items():
            self.fargate.set_behaviour(target, behaviour)
        rules = [fault.to_rule() for fault in scenario.faults]
        epoch = time.time()
        plan = FaultPlan(rules=rules, epoch=epoch)

        def only(kinds: Any) -> FaultPlan:
            return FaultPlan(rules=[r for r in rules if r.kind in kinds], epoch=epoch)

        self.fargate.use_plan(only(TASK_FAULTS))
        self.standin.use_fault_plan(
            only(HTTP_KINDS - {FaultKind.CRASH_AFTER_REVIEW_POST}), on_rotate=self._rotate_token
        )
        worker_plan = only(BOTOCORE_KINDS | {FaultKind.CRASH_AFTER_REVIEW_POST})
        if worker_plan.rules or self._worker_plan_installed:
            for worker in self.workers.values():
                worker.configure(worker_plan.to_env())
            self._worker_plan_installed = bool(worker_plan.rules)
        self.delivery_plan = only(ENGINE_FAULTS)
        if self.delivery_plan.has(FaultKind.SQS_DUPLICATE_DELIVERY):
            self._start_twins()
        self.fault_plan = plan
        return plan

    def _redeliver(self, feeder: KafkaFeeder, messages: list[KafkaMessage]) -> None:
        """kafka-redelivery: the chosen records come again, same offsets, in a later batch `delay_seconds` on
        (deployed: minutes or hours apart, e.g. after a consumer group rebalance)."""
        plan = self.delivery_plan
        if not plan.has(FaultKind.KAFKA_REDELIVERY):
            return
        again: list[KafkaMessage] = []
        delay = 0.0
        for message in messages:
            found = submission_of(message.value, self.config)
            ids = (found[0], found[1]) if found else ()
            rule = plan.fire(FaultKind.KAFKA_REDELIVERY, ids=ids, now=time.time())
            if rule is not None:
                again.append(message)
                delay = max(delay, rule.param("delay_seconds", DEFAULT_REDELIVERY_DELAY_SECONDS))
        if again and not self._stop.wait(delay):
            feeder.feed(again, should_stop=self._stop.is_set)

    def _rotate_token(self, token: str) -> None:
        """topcoder-401-rotated: the operator puts the new token into the static parameter."""
        assert self.resources is not None
        self._token = token
        self.aws.client("ssm", ECS_AGENT_KEY).put_parameter(
            Name=self.resources.token_parameter_name, Value=token, Type="SecureString", Overwrite=True
        )

    def _start_twins(self) -> None:
        """A second instance of each challenge processor, so a duplicate SQS delivery runs at the same time."""
        missing = [
            FunctionWorker(self.worker_specs[c.function_name])
            for c in (self.resources.challenges.values() if self.resources else [])
            if c.function_name not in self.twins
        ]
        for worker in missing:
            self.twins[worker.spec.function_name] = worker
        start_all(missing)
        env = self.workers[next(iter(self.twins))].spec.env if self.twins else {}
        for worker in missing:
            worker.configure({k: v for k, v in env.items() if k == FAULT_PLAN_ENV})

    def _message_ids(self, message: dict[str, Any], challenge_id: str) -> tuple[str, ...]:
        try:
            body = json.loads(message.get("Body") or "")
        except ValueError:
            body = None
        submission = str(body.get("submissionId") or "") if isinstance(body, dict) else ""
        return (submission, challenge_id)

    def run(
        self,
        records: list[InputRecord],
        scenario: Scenario | None = None,
        *,
        deadline_seconds: float | None = None,
        stall_seconds: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> RunOutcome:
        """Feed `records` and follow them until every one is final and the pipeline is quiescent (then a settle
        period), or until no record changed state for `stall_seconds` (default DEFAULT_STALL_SECONDS), or the
        hard cap `deadline_seconds` (default `default_hard_cap_seconds(len(records))`) from the first feed."""
        assert self.resources is not None
        assert self.standin is not None
        assert self.fargate is not None
        self.apply_scenario(scenario or Scenario())
        for record in records:
            found = submission_of(record.value, self.config)
            if found is not None:
                self.standin.add_submission(*found)

        # One event source mapping per platform topic (decision 084); a record goes to the topic it names.
        sources = {source.topic: source for source in self.plan.kafka_sources()}
        by_topic = assign_to_topics(records, tuple(sources), self.partitions)
        messages: list[KafkaMessage] = sorted((m for ms in by_topic.values() for m in ms), key=lambda m: m.position)
        router_name = self.plan.names.router_function
        feeders = {
            topic: KafkaFeeder(
                lambda event: self._invoke(router_name, event),
                self._put_failure_record,
                batch_size=self.deviations.kafka_batch_size or source.batch_size,
                retry_attempts=source.retry_attempts,
                bisect_on_error=source.bisect_batch_on_error,
                event_source_arn=self.config.kafka.cluster_arn,
                function_arn=f"arn:aws:lambda:{self.config.region}:{self.config.account}:function:{router_name}",
            )
            for topic, source in sources.items()
        }
        feed_stats = FeedStats()  # one account of the Kafka side, whichever topic a record came on
        for feeder in feeders.values():
            feeder.stats = feed_stats
        feeding_done = threading.Event()

        def feed() -> None:
            try:
                for topic, feeder in feeders.items():
                    if by_topic.get(topic):
                        feeder.feed(by_topic[topic], should_stop=self._stop.is_set)
                for topic, feeder in feeders.items():
                    if by_topic.get(topic):
                        self._redeliver(feeder, by_topic[topic])
            finally:
                feeding_done.set()

        feeding_started = time.time()
        for challenge in self.resources.challenges.values():
            self._thread(f"esm-{challenge.challenge_id[:8]}", functools.partial(self._poll_challenge_queue, challenge))
        self._thread("completion-target", self._poll_completion_events)
        self._thread("sweeper-schedule", self._sweep_on_schedule)
        self._thread("kafka-esm", feed)

        sqs = self.aws.client("sqs")
        ddb = self.aws.client("dynamodb")
        obs = Observations(
            first_invoked_at=feed_stats.first_invoked_at,
            expected_phases={
                c.challenge_id: tuple(p.phase for p in self.config.challenge_config(c).submission_phases)
                for c in self.config.challenges
            },
        )
        dlq_counts: dict[str, int] = {}
        hard_cap = deadline_seconds if deadline_seconds is not None else default_hard_cap_seconds(len(messages))
        stall_limit = stall_seconds if stall_seconds is not None else DEFAULT_STALL_SECONDS
        deadline = feeding_started + hard_cap
        deadline_hit = stalled = False
        results: list[RecordResult] = []
        interval = min(1.0, _OBSERVE_INTERVAL + 0.0005 * len(messages))  # big runs: fewer, larger looks
        last_signature: tuple[Any, ...] | None = None
        last_progress = time.time()
        quiet_since: float | None = None
        settle = self.settle_seconds()
        while True:
            pending = {str(r.submission_id) for r in results if r.submission_id and not r.final} if results else None
            self._observe(sqs, ddb, obs, dlq_counts, pending)
            self._observe_api_and_tasks(obs)
            results = classify(messages, obs, feeding_done=feeding_done.is_set())
            final = sum(1 for r in results if r.final)
            if progress is not None:
                counts: dict[str, int] = {}
                for r in results:
                    counts[r.state] = counts.get(r.state, 0) + 1
                progress(final, len(results), counts)
            now = time.time()
            # Quiescent: every record final, nothing in flight (queues, tasks, API requests, delayed events).
            # The report is read only once it has stayed so for the settle period, so a commit or event that
            # lands late (a slow API commit, a delayed STOPPED event) is still seen (decision 079).
            busy = self._busy(sqs) if feeding_done.is_set() and final == len(results) else "records not final"
            # A backlog that drains (the completion worker working through queued duplicate events after every
            # record is final) is progress too: its depth is part of the signature, so it is not taken for a stall.
            signature = (self._progress_signature(results, feed_stats), busy)
            if signature != last_signature:
                last_signature, last_progress = signature, now
            if busy is None:
                settle = self.settle_seconds()
                quiet_since = quiet_since if quiet_since is not None else now
                if now - quiet_since >= settle:
                    break
            else:
                quiet_since = None
            if now >= deadline:
                deadline_hit = True
                break
            if now - last_progress >= stall_limit:
                stalled = True
                self.busy_at_stall = busy
                break
            time.sleep(interval)

        finished = time.time()
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads = []
        # Last look: anything that landed while the threads wound down, then the API and the tasks.
        self._observe(sqs, ddb, obs, dlq_counts, drain_limit=1_000_000)
        self._observe_api_and_tasks(obs)
        results = classify(messages, obs, feeding_done=feeding_done.is_set())
        completion_dlq = int(
            sqs.get_queue_attributes(
                QueueUrl=self.resources.completion_dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
        )
        return RunOutcome(
            environment=self.config.environment,
            records=results,
            violations=violations(results),
            api_violations=[
                {"method": r.method, "path": r.path, "status": r.status, "errors": r.errors}
                for r in self.standin.violations()
            ],
            secret_leaks=list(self.fargate.leaks),
            event_errors=list(self.fargate.event_errors),
            started_at=self.started_at,
            feeding_started_at=feeding_started,
            finished_at=finished,
            deadline_hit=deadline_hit,
            feed=feed_stats,
            aws_calls=self._own_calls(),
            workers=[
                WorkerStats(
                    name=name,
                    invocations=w.invocations,
                    errors=w.errors,
                    cold_starts=w.cold_starts,
                    init_ms=list(w.init_ms),
                    durations_ms=list(self._durations.get(name, [])),
                )
                for name, w in self.workers.items()
            ],
            deviations=self.deviations,
            log_dir=self.log_dir,
            dead_letter_counts=dict(dlq_counts),
            completion_dlq_count=completion_dlq,
            tasks_started=len(self.fargate.tasks),
            run_task_calls=self.fargate.run_task_calls,
            routed_submissions=len({str(r.get("submissionId")) for r in obs.routed.values()}),
            function_keys={
                name: function_access_key(name, self.config.environment) for name in self.resources.functions
            },
            lost_stopped_events=list(self.fargate.lost_events),
            async_invocations=len(self.lambda_endpoint.invocations) if self.lambda_endpoint else 0,
            stalled=stalled,
            busy_at_stall=self.busy_at_stall if stalled else None,
            deadline_seconds=hard_cap,
            stall_seconds=stall_limit,
            settle_seconds=settle,
            summations=v6_summations(self.standin),
            summation_calls=summation_calls(self.standin),
            running_most=dict(self.fargate.running.most),
            caps=self.configured_caps(),
            slots_held_at_end=self._slots_held(ddb) if not (deadline_hit or stalled) else {},
        )

    def configured_caps(self) -> dict[str, int]:
        """The caps as configured (the SSM documents the run started with): per challenge, and the environment's."""
        caps = {
            c.challenge_id: self.config.challenge_config(c).capacity.max_running_tasks for c in self.config.challenges
        }
        caps[ALL_CHALLENGES] = self.plan.environment_capacity().max_running_tasks
        return caps

    def _slots_held(self, ddb: Any) -> dict[str, int]:
        """Pools whose `used` is not 0 once the run is quiet: a leaked slot (the reconciler would correct it)."""
        from mm_capacity.store import CapacityStore

        assert self.resources is not None
        resources = self.resources
        snapshot = CapacityStore(resources.capacity_table, resources.status_table, dynamodb_client=ddb).pools()
        pools = [snapshot.env, *snapshot.challenges.values(), *snapshot.phases.values()]
        return {pool.sk: pool.used for pool in pools if pool.used or pool.holders}


def run_local(
    config: EnvironmentConfig,
    records: list[InputRecord],
    scenario: Scenario | None = None,
    *,
    deadline_seconds: float | None = None,
    stall_seconds: float | None = None,
    deviations: LocalDeviations | None = None,
    log_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    max_running_tasks: int = 8,
    partitions: int = 1,
) -> RunOutcome:
    with LocalPipeline(
        config,
        deviations=deviations,
        log_dir=log_dir,
        max_running_tasks=max_running_tasks,
        partitions=partitions,
    ) as pipeline:
        return pipeline.run(
            records, scenario, deadline_seconds=deadline_seconds, stall_seconds=stall_seconds, progress=progress
        )
