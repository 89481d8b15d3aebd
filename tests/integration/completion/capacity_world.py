"""The capacity world of the completion and sweeper tests (decision 096): two challenges with their queues on moto
SQS, the environment's caps on moto SSM, runs enqueued, admitted and launched through the real capacity and status
stores exactly as the challenge processor does, and the real completion handler on top.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from completion_lambda import handler as completion_handler
from completion_lambda import wiring as completion_wiring
from completion_lambda.wiring import CompletionDependencies
from mm_adapters import aws as aws_clients
from mm_adapters.status_store import StatusStore
from mm_capacity.store import AdmissionLimits, AdmitOutcome, CapacityStore
from mm_contracts.models.capacity import ChallengeCapacity
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.lifecycle import SubmissionState
from mm_contracts.models.phase import Platform, ScoringPhase, run_id
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.models.task import TaskEnv
from mm_contracts.names import started_by
from tests.builders import new_uuid
from tests.conftest import Clock
from tests.fakes.metrics import RecordingMetrics
from tests.integration.completion.conftest import (
    CLUSTER_ARN,
    DEFAULT_PHASE,
    ENVIRONMENT,
    QUEUE_NAME_TEMPLATE,
    completion_settings,
    put_environment_capacity,
    routed,
    stopped_event,
    task_arn,
    task_environment,
)
from tests.unit.completion.fakes import (
    CHALLENGE_ID,
    ConfigsByChallenge,
    FakeReviewApi,
    FakeSummationsApi,
    challenge_config,
)

OTHER_CHALLENGE = "7c2e2f79-ad92-4c4d-9b5a-3e4f5a6b7c8d"
TRANSIENT_START_FAILURE = "ResourceInitializationError: failed to configure ENI: Timeout waiting for network interface"
SUPERSEDED_STOP = "Superseded by a newer submission 0f6e2a1c-8d2b-4a57-9c3e-5b7d9e1f2a3b"


@dataclass
class World:
    """Two challenges (the test challenge and another), their queues, and the completion handler on top."""

    status: StatusStore
    capacity: CapacityStore
    clock: Clock
    context: Any
    review_api: FakeReviewApi
    summations: FakeSummationsApi
    metrics: RecordingMetrics
    configs: ConfigsByChallenge
    queues: dict[str, str] = field(default_factory=dict)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return completion_handler.handler(event, self.context)

    def submission(self, challenge_id: str, *, member_id: int = 40_158_994, platform: Platform = Platform.V5) -> Any:
        submission = routed(new_uuid() if platform is Platform.V5 else _nanoid(), platform=platform)
        return submission.model_copy(update={"challenge_id": challenge_id, "member_id": member_id})

    def waiting(self, submission: RoutedSubmission, phase: ScoringPhase = DEFAULT_PHASE) -> str:
        enqueued = self.capacity.enqueue(
            submission, phase=phase, scorer_type="example-scorer", timeout_seconds=3600, priority_rank=1
        )
        assert enqueued.created
        self.clock.advance(1)  # later runs queue behind
        return run_id(submission.submission_id, phase)

    def launched(self, submission: RoutedSubmission, phase: ScoringPhase = DEFAULT_PHASE) -> tuple[str, str]:
        """Enqueued, admitted (env cap 1) and launched: the run holds the environment's only slot."""
        rid = self.waiting(submission, phase)
        entry = next(e for e in self.capacity.queue_entries(submission.challenge_id) if e.run_id == rid)
        limits = AdmissionLimits(challenge_cap=5, phase_cap=None, env_cap=1, env_cpu_cap_units=None, cpu_units=1024)
        assert self.capacity.admit(entry, limits).outcome is AdmitOutcome.ADMITTED
        claim = self.status.claim_launch(submission, phase=phase, scorer_type="example-scorer", lease_seconds=120)
        assert claim.granted
        arn = task_arn()
        assert self.status.mark_launched(
            rid, attempt=claim.attempt, task_arn=arn, cluster_arn=CLUSTER_ARN, timeout_seconds=3600
        )
        return rid, arn

    def stopped(self, submission: RoutedSubmission, arn: str, **kwargs: Any) -> dict[str, Any]:
        environment = task_environment(submission.submission_id, challenge_id=submission.challenge_id)
        if submission.platform is Platform.V6:
            environment[TaskEnv.PLATFORM.value] = "v6"
        return stopped_event(
            submission.submission_id,
            arn,
            environment=environment,
            started_by=started_by(ENVIRONMENT, submission.challenge_id),
            **kwargs,
        )

    def state(self, rid: str) -> SubmissionState:
        record = self.status.get(rid)
        assert record is not None
        return record.state

    def holders(self) -> set[str]:
        return set(self.capacity.pools().env.holders)

    def messages(self, challenge_id: str) -> list[RoutedSubmission]:
        sqs = aws_clients.client("sqs")
        response = sqs.receive_message(QueueUrl=self.queues[challenge_id], MaxNumberOfMessages=10)
        return [RoutedSubmission.model_validate_json(m["Body"]) for m in response.get("Messages", [])]


def _nanoid() -> str:
    return new_uuid().replace("-", "")[:14]


def config_of(challenge_id: str, **values: Any) -> ChallengeConfig:
    return challenge_config(challenge_id=challenge_id, capacity=ChallengeCapacity(max_running_tasks=5), **values)


def capacity_world(status_table: str, capacity_table: str, clock: Clock, lambda_context: Any) -> Iterator[World]:
    """The world with an environment cap of 1 and challenge caps of 5; the completion handler installed."""
    put_environment_capacity(maxRunningTasks=1)
    sqs = aws_clients.client("sqs")
    queues = {
        cid: sqs.create_queue(QueueName=QUEUE_NAME_TEMPLATE.format(challenge_id=cid))["QueueUrl"]
        for cid in (CHALLENGE_ID, OTHER_CHALLENGE)
    }
    status = StatusStore(status_table, clock=clock)
    capacity = CapacityStore(capacity_table, status_table, clock=clock)
    configs = ConfigsByChallenge(config_of(CHALLENGE_ID), config_of(OTHER_CHALLENGE))
    built = World(
        status,
        capacity,
        clock,
        lambda_context,
        FakeReviewApi(),
        FakeSummationsApi(),
        RecordingMetrics(),
        configs,
        queues,
    )
    settings = completion_settings(status_table, review_api_url="http://127.0.0.1:9/v6").model_copy(
        update={"challenge_queue_name_template": QUEUE_NAME_TEMPLATE, "capacity_cache_seconds": 0}
    )
    completion_wiring.use_dependencies(
        CompletionDependencies(
            settings,
            store=status,
            config_source=configs,
            review_api=built.review_api,
            summations_api=built.summations,
            metrics_sink=built.metrics,
            sqs=sqs,
            capacity_store=capacity,
        )
    )
    yield built
    completion_wiring.use_dependencies(None)
