"""The resources of one environment: queues and their policy, Kafka sources, the completion rule, the
challenge configs and table rows, capacity, shards (`ResourcePlan`, the base of `WiringPlan`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infrastructure.config import ChallengeSettings, EnvironmentConfig
from infrastructure.wiring.names import ResourceNames
from mm_contracts.models.capacity import EnvironmentCapacity
from mm_contracts.models.challenge import ChallengeConfig, ChallengeRecord
from mm_contracts.models.phase import Platform
from mm_contracts.names import (
    CHALLENGE_ID_ATTRIBUTE,
    PROJECT,
    capacity_parameter_name,
    challenge_config_parameter_name,
    challenge_config_parameter_prefix,
    legacy_challenge_alias_key,
    started_by_prefix,
)

# Queue policy (AWS: visibility timeout >= 6x the consuming function's timeout).
VISIBILITY_TIMEOUT_FACTOR = 6
QUEUE_RETENTION_DAYS = 7
DLQ_RETENTION_DAYS = 14
MAX_RECEIVE_COUNT = 3
LEASE_MARGIN_SECONDS = 30  # a lease outlives the invocation holding it
SWEEPER_MARGIN_SECONDS = 60  # the sweeper judges a launch only this long after it can no longer be in flight
# EventBridge -> completion function delivery: retried this long, then the event goes to the completion DLQ.
COMPLETION_TARGET_MAX_EVENT_AGE_SECONDS = 6 * 3600
COMPLETION_TARGET_RETRY_ATTEMPTS = 20
# SQS -> challenge function batch size (each record may be a RunTask call, about 20/s on Fargate).
CHALLENGE_BATCH_SIZE = 5


@dataclass(frozen=True)
class ResourceRefs:
    """Deploy-time references the function environments need."""

    sns_topic_arn: str
    challenge_table_name: str
    status_table_name: str
    audit_queue_url: str
    # None: the planned name (`ResourceNames.capacity_table`), for callers that build refs by hand.
    capacity_table_name: str | None = None


@dataclass(frozen=True)
class QueuePlan:
    challenge_id: str
    queue_name: str
    dlq_name: str
    visibility_timeout_seconds: int
    retention_seconds: int
    dlq_retention_seconds: int
    max_receive_count: int
    filter_policy: dict[str, list[str]]
    max_concurrency: int


@dataclass(frozen=True)
class KafkaSourcePlan:
    platform: Platform
    topic: str
    consumer_group_id: str
    batch_size: int
    batching_window_seconds: int
    starting_position: str
    retry_attempts: int
    max_record_age_seconds: int
    bisect_batch_on_error: bool
    report_batch_item_failures: bool
    minimum_pollers: int
    maximum_pollers: int


class ResourcePlan:
    """The resources derived from one EnvironmentConfig: names, queues, Kafka sources, rule, data, shards."""

    def __init__(self, config: EnvironmentConfig) -> None:
        self.config = config
        self.names = ResourceNames(config.environment)

    # ------------------------------------------------------------------ messaging
    def queue_plan(self, challenge: ChallengeSettings) -> QueuePlan:
        return QueuePlan(
            challenge_id=challenge.challenge_id,
            queue_name=self.names.challenge_queue(challenge.challenge_id),
            dlq_name=self.names.challenge_dlq(challenge.challenge_id),
            visibility_timeout_seconds=VISIBILITY_TIMEOUT_FACTOR * self.config.challenge_processor.timeout_seconds,
            retention_seconds=QUEUE_RETENTION_DAYS * 86_400,
            dlq_retention_seconds=DLQ_RETENTION_DAYS * 86_400,
            max_receive_count=MAX_RECEIVE_COUNT,
            filter_policy=self.filter_policy(challenge.challenge_id),
            max_concurrency=challenge.max_concurrency,
        )

    @staticmethod
    def filter_policy(challenge_id: str) -> dict[str, list[str]]:
        return {CHALLENGE_ID_ATTRIBUTE: [challenge_id]}

    def kafka_sources(self) -> tuple[KafkaSourcePlan, ...]:
        """One Kafka event source mapping per platform: a mapping reads exactly one topic (CloudFormation
        `Topics`: one item), and each joins its own consumer group (a group id is unique among event sources)."""
        return tuple(self._kafka_source(platform) for platform in self.config.platforms)

    def kafka_source(self) -> KafkaSourcePlan:
        """The first of `kafka_sources()` (the only one of a single-platform environment)."""
        return self.kafka_sources()[0]

    def _kafka_source(self, platform: Platform) -> KafkaSourcePlan:
        kafka = self.config.kafka
        group = kafka.consumer_group_id or f"{PROJECT}-{self.config.environment}"
        return KafkaSourcePlan(
            platform=platform,
            topic=kafka.topic_of(platform),
            # v5 keeps the group it always had (its committed offsets); v6 joins a group of its own.
            consumer_group_id=group if platform is Platform.V5 else f"{group}-v6",
            batch_size=kafka.batch_size,
            batching_window_seconds=kafka.batching_window_seconds,
            starting_position=kafka.starting_position.value,
            retry_attempts=kafka.retry_attempts,
            max_record_age_seconds=kafka.max_record_age_seconds,
            bisect_batch_on_error=True,
            report_batch_item_failures=True,
            minimum_pollers=kafka.minimum_pollers,
            maximum_pollers=kafka.maximum_pollers,
        )

    def parameter_change_rule_pattern(self) -> dict[str, Any]:
        """Parameter Store changes of this environment's caps and challenge configs (decision 121): prefix matching
        on `detail.name` (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html),
        but only the two kinds of parameter the functions cache: the token parameters under the same prefix are
        rewritten by the refresher and must not invoke the sweeper. The sweeper's handler recognises the same two
        (`sweeper_lambda.parameter_change`; a test holds them equal)."""
        config_prefix = challenge_config_parameter_prefix(self.config.ssm_prefix).rstrip("/") + "/"
        return {
            "source": ["aws.ssm"],
            "detail-type": ["Parameter Store Change"],
            "detail": {"name": [self.capacity_parameter(), {"prefix": config_prefix}]},
        }

    def completion_rule_pattern(self) -> dict[str, Any]:
        """STOPPED tasks of the scorer cluster that this pipeline (this environment) started."""
        return {
            "source": ["aws.ecs"],
            "detail-type": ["ECS Task State Change"],
            "detail": {
                "lastStatus": ["STOPPED"],
                "clusterArn": [self.config.ecs.cluster_arn],
                "startedBy": [{"prefix": started_by_prefix(self.config.environment)}],
            },
        }

    # ------------------------------------------------------------------ data
    def challenge_config(self, challenge: ChallengeSettings) -> ChallengeConfig:
        """The SSM document `<ssmPrefix>/challenges/{id}/config` for one challenge (the config's own mapping,
        which it validates when it loads)."""
        return self.config.challenge_config(challenge)

    def challenge_config_parameter(self, challenge_id: str) -> str:
        return challenge_config_parameter_name(challenge_id, self.config.ssm_prefix)

    def capacity_parameter(self) -> str:
        """The SSM parameter `<ssmPrefix>/capacity` holding `environment_capacity()` as JSON."""
        return capacity_parameter_name(self.config.ssm_prefix)

    def environment_capacity(self) -> EnvironmentCapacity:
        """The document the core stack writes to `capacity_parameter()` (the config's `capacity` block)."""
        return self.config.capacity.runtime()

    def challenge_queue_url(self, challenge_id: str) -> str:
        """A challenge queue's URL as SQS forms it (the stacks pass the queue's own reference instead)."""
        config = self.config
        return f"https://sqs.{config.region}.amazonaws.com/{config.account}/{self.names.challenge_queue(challenge_id)}"

    def challenge_records(self, queue_urls: dict[str, str] | None = None) -> list[ChallengeRecord]:
        """Rows of the challenge table: one per challenge, plus an alias row per legacy numeric id."""
        return self.challenge_records_for(self.config.challenges, queue_urls)

    def challenge_records_for(
        self,
        challenges: tuple[ChallengeSettings, ...] | list[ChallengeSettings],
        queue_urls: dict[str, str] | None = None,
    ) -> list[ChallengeRecord]:
        """The challenge-table rows of some challenges (a shard stack writes those of its own challenges)."""
        records: list[ChallengeRecord] = []
        for challenge in challenges:
            records.append(
                ChallengeRecord(
                    challenge_id=challenge.challenge_id,
                    active=challenge.active,
                    platform=challenge.served_by,
                    name=challenge.name,
                    queue_url=(queue_urls or {}).get(challenge.challenge_id),
                    legacy_id=challenge.legacy_id,
                )
            )
            if challenge.legacy_id is not None:
                records.append(
                    ChallengeRecord(
                        challenge_id=legacy_challenge_alias_key(challenge.legacy_id),
                        alias_of=challenge.challenge_id,
                        legacy_id=challenge.legacy_id,
                    )
                )
        return records

    # ------------------------------------------------------------------ Kafka IAM resources
    def _kafka_resource(self, kind: str, name: str) -> str:
        """`arn:...:kafka:<region>:<account>:<kind>/<cluster-name>/<cluster-uuid>/<name>` (MSK IAM access control)."""
        prefix, _, cluster_path = self.config.kafka.cluster_arn.partition(":cluster/")
        return f"{prefix}:{kind}/{cluster_path}/{name}"

    def kafka_topic_arns(self) -> tuple[str, ...]:
        return tuple(self._kafka_resource("topic", source.topic) for source in self.kafka_sources())

    def kafka_group_arns(self) -> tuple[str, ...]:
        return tuple(self._kafka_resource("group", source.consumer_group_id) for source in self.kafka_sources())

    def kafka_topic_arn(self) -> str:
        """The first source's topic (single-platform environments)."""
        return self.kafka_topic_arns()[0]

    def kafka_group_arn(self) -> str:
        return self.kafka_group_arns()[0]

    # ------------------------------------------------------------------ sharding
    def challenge_shards(self) -> dict[int, tuple[ChallengeSettings, ...]]:
        """Shard number -> its challenges (sorted by id), non-empty shards only (decision 050).

        A challenge's shard is its pin or a stable hash of its id, never its position in the config, so adding,
        removing or reordering challenges moves no other challenge. The config refuses a shard over
        `challengesPerStack` (the 500-resource limit).
        """
        return self.config.shard_assignment()


def dynamodb_item(record: ChallengeRecord) -> dict[str, dict[str, Any]]:
    """A challenge-table row in DynamoDB's typed JSON (what PutItem / BatchWriteItem take)."""
    item: dict[str, dict[str, Any]] = {}
    for key, value in record.model_dump(by_alias=True, exclude_none=True).items():
        if isinstance(value, bool):
            item[key] = {"BOOL": value}
        elif isinstance(value, int | float):
            item[key] = {"N": str(value)}
        else:
            item[key] = {"S": str(value)}
    return item
