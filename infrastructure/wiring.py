"""The wiring plan: every name, setting, filter policy, pattern and function environment of one environment.

Pure Python (no CDK import). The CDK constructs build resources from this plan, and the local pipeline
creates the same resources in the emulator from it, so the two cannot drift silently; tests compare the
synthesized templates with the plan as well.

Deploy-time references (ARNs, URLs) are passed in as `ResourceRefs`: CDK tokens in the stacks, real
values in the emulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infrastructure.config import ChallengeSettings, EnvironmentConfig, EnvironmentConfigError
from mm_contracts.metric_names import METRICS_NAMESPACE
from mm_contracts.models.capacity import EnvironmentCapacity
from mm_contracts.models.challenge import ChallengeConfig, ChallengeRecord, ScorerEnvironment
from mm_contracts.models.phase import Platform
from mm_contracts.names import (
    CHALLENGE_ID_ATTRIBUTE,
    PROJECT,
    capacity_parameter_name,
    challenge_config_parameter_name,
    challenge_config_parameter_prefix,
    legacy_challenge_alias_key,
    scorer_token_parameter_name,
    started_by_prefix,
    static_token_parameter_name,
)
from mm_contracts.settings import (
    LAMBDA_ASYNC_RETRY_WINDOW_SECONDS,
    CertificateMonitorSettings,
    ChallengeProcessorSettings,
    CompletionSettings,
    RouterSettings,
    ScorerTokenRefresherSettings,
    TimeoutSweeperSettings,
    TokenSettings,
    TokenSource,
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

# The sweeper's Powertools service name: its metrics carry it as the `service` dimension (the capacity alarms).
SWEEPER_SERVICE_NAME = "timeout-sweeper"

# Filled in by the completion function: the challenge queues' name pattern it relaunches through (decision 072).
CHALLENGE_ID_PLACEHOLDER = "{challenge_id}"

# The handlers, as Lambda resolves them inside each function's asset.
ROUTER_HANDLER = "router_lambda.handler.handler"
CHALLENGE_HANDLER = "challenge_lambda.handler.handler"
COMPLETION_HANDLER = "completion_lambda.handler.handler"
SWEEPER_HANDLER = "sweeper_lambda.handler.handler"
CERTIFICATE_MONITOR_HANDLER = "certificate_monitor.handler.handler"
SCORER_TOKEN_REFRESHER_HANDLER = "scorer_token_refresher.handler.handler"
# The scorer token must outlive the longest run by this much more (the task's start, image pull, clock skew).
SCORER_TOKEN_SLACK_SECONDS = 300
# S3 bucket names are global and at most 63 characters (decision 055).
MAX_BUCKET_NAME_LENGTH = 63


@dataclass(frozen=True)
class ResourceNames:
    """Physical names: predictable for operators ("mm-<env>-..."), and the emulator uses the same ones."""

    environment: str

    def _name(self, suffix: str) -> str:
        return f"mm-{self.environment}-{suffix}"

    @property
    def submissions_topic(self) -> str:
        return self._name("submissions")

    @property
    def challenge_table(self) -> str:
        return self._name("challenges")

    @property
    def status_table(self) -> str:
        """One item per run (submission, phase), keyed by `runId` (decision 084). A new name: the v5-only table
        (`mm-<env>-submission-status`, keyed by `submissionId`) cannot change its key in place."""
        return self._name("runs")

    @property
    def legacy_status_table(self) -> str:
        """The status table before decision 084: kept (retainData) for operators, no longer written."""
        return self._name("submission-status")

    @property
    def capacity_table(self) -> str:
        """Slots, waiting queues, member rounds and the RunTask pace (decision 097): a table of its own."""
        return self._name("capacity")

    @property
    def audit_queue(self) -> str:
        return self._name("router-audit")

    @property
    def audit_marks_table(self) -> str:
        """Kafka records the router already audited (decision 075); owned by the router construct."""
        return self._name("router-audit-marks")

    def router_failure_bucket(self, account: str, region: str) -> str:
        """The Kafka on-failure bucket (decision 055): global names, so account and region are part of it."""
        name = self._name(f"router-failures-{account}-{region}")
        if len(name) > MAX_BUCKET_NAME_LENGTH:
            raise EnvironmentConfigError(f"bucket name {name!r} is longer than {MAX_BUCKET_NAME_LENGTH} characters")
        return name

    @property
    def certificate_monitor_function(self) -> str:
        return self._name("certificate-monitor")

    @property
    def certificate_monitor_schedule(self) -> str:
        return self._name("certificate-check")

    @property
    def scorer_token_refresher_function(self) -> str:
        return self._name("scorer-token-refresher")

    @property
    def scorer_token_refresh_schedule(self) -> str:
        return self._name("scorer-token-refresh")

    @property
    def completion_dlq(self) -> str:
        return self._name("completion-dlq")

    @property
    def fanout_dlq(self) -> str:
        """SNS->SQS deliveries that failed (e.g. a queue's key policy broke): one DLQ for all subscriptions."""
        return self._name("fanout-dlq")

    @property
    def alarm_topic(self) -> str:
        return self._name("alarms")

    @property
    def dashboard(self) -> str:
        return self._name("pipeline")

    @property
    def router_function(self) -> str:
        return self._name("router")

    @property
    def completion_function(self) -> str:
        return self._name("completion")

    @property
    def sweeper_function(self) -> str:
        return self._name("timeout-sweeper")

    @property
    def completion_rule(self) -> str:
        return self._name("task-stopped")

    @property
    def sweeper_schedule(self) -> str:
        return self._name("timeout-sweep")

    def challenge_queue(self, challenge_id: str) -> str:
        return self._name(f"ch-{challenge_id}")  # <= 80 chars

    def challenge_dlq(self, challenge_id: str) -> str:
        return self._name(f"ch-{challenge_id}-dlq")

    def challenge_function(self, challenge_id: str) -> str:
        return self._name(f"ch-{challenge_id}")  # <= 64 chars with a 16-char environment


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


class WiringPlan:
    """Everything derived from one EnvironmentConfig."""

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

    # ------------------------------------------------------------------ function environments
    def _token_fields(self) -> dict[str, Any]:
        token = self.config.token
        return {
            "token_source": token.source,
            "token_parameter_name": static_token_parameter_name(self.config.ssm_prefix),
            "auth0_proxy_url": token.auth0_proxy_url,
            "auth0_credentials_secret_arn": token.auth0_credentials_secret_arn,
        }

    def _common(self, service: str) -> dict[str, Any]:
        return {
            "environment_name": self.config.environment,
            "powertools_service_name": service,
            "powertools_metrics_namespace": METRICS_NAMESPACE,
        }

    def router_settings(self, refs: ResourceRefs) -> RouterSettings:
        return RouterSettings(
            **self._common("router"),
            sns_topic_arn=refs.sns_topic_arn,
            challenge_table_name=refs.challenge_table_name,
            audit_queue_url=refs.audit_queue_url,
            audit_marks_table_name=self.names.audit_marks_table,
            accepted_topics=self.config.accepted_topics,
            platforms=self.config.platforms,
            allowed_url_hosts=self.config.allowed_url_hosts,
        )

    def _capacity_fields(self, refs: ResourceRefs) -> dict[str, Any]:
        return {
            "capacity_table_name": refs.capacity_table_name or self.names.capacity_table,
            "capacity_parameter_name": self.capacity_parameter(),
        }

    def challenge_settings(
        self, challenge: ChallengeSettings, refs: ResourceRefs, *, queue_url: str | None = None
    ) -> ChallengeProcessorSettings:
        """`queue_url`: the challenge's own queue (admitted runs of its challenge are sent there); default the URL
        SQS gives the planned name."""
        return ChallengeProcessorSettings(
            **self._common("challenge-processor"),
            **self._token_fields(),
            **self._capacity_fields(refs),
            challenge_queue_url=queue_url or self.challenge_queue_url(challenge.challenge_id),
            challenge_id=challenge.challenge_id,
            challenge_config_parameter=self.challenge_config_parameter(challenge.challenge_id),
            status_table_name=refs.status_table_name,
            status_ttl_days=self.config.status_ttl_days,
            max_receive_count=MAX_RECEIVE_COUNT,
            launch_lease_seconds=self.config.challenge_processor.timeout_seconds + LEASE_MARGIN_SECONDS,
            allowed_url_hosts=self.config.allowed_url_hosts,  # the router's list: one policy, one list
            # A v6 run that is skipped (no task) is handed to the completion function for its terminal summation;
            # a v5 challenge never skips a run this way, so it gets neither the name nor the grant.
            completion_function_name=(self.names.completion_function if challenge.served_by is Platform.V6 else None),
        )

    def completion_settings(self, refs: ResourceRefs) -> CompletionSettings:
        return CompletionSettings(
            **self._common("completion"),
            **self._token_fields(),
            **self._capacity_fields(refs),
            status_table_name=refs.status_table_name,
            status_ttl_days=self.config.status_ttl_days,
            challenge_config_parameter_prefix=challenge_config_parameter_prefix(self.config.ssm_prefix),
            submission_api_url=self.config.submission_api_url,
            review_api_url=self.config.review_api_url,
            report_lease_seconds=self.report_lease_seconds(),
            # A transient start failure is relaunched through its challenge queue (decision 072).
            challenge_queue_name_template=self.names.challenge_queue(CHALLENGE_ID_PLACEHOLDER),
        )

    def sweeper_settings(self, refs: ResourceRefs) -> TimeoutSweeperSettings:
        processor_timeout = self.config.challenge_processor.timeout_seconds
        launch_lease = processor_timeout + LEASE_MARGIN_SECONDS
        visibility = VISIBILITY_TIMEOUT_FACTOR * processor_timeout
        return TimeoutSweeperSettings(
            **self._common(SWEEPER_SERVICE_NAME),
            **self._capacity_fields(refs),
            # The sweeper's dispatch admits runs of any challenge (the safety net, decision 096): it reads their
            # configs and sends to their queues, as the completion function does.
            challenge_config_parameter_prefix=challenge_config_parameter_prefix(self.config.ssm_prefix),
            challenge_queue_name_template=self.names.challenge_queue(CHALLENGE_ID_PLACEHOLDER),
            status_table_name=refs.status_table_name,
            completion_function_name=self.names.completion_function,
            ecs_cluster_arns=(self.config.ecs.cluster_arn,),
            # An untracked task younger than a launch lease may still be recorded by its launch (decision 071).
            orphan_settle_seconds=launch_lease + SWEEPER_MARGIN_SECONDS,
            # After its lease, a LAUNCHING item's message can come back at most maxReceiveCount more times, one
            # visibility timeout apart; after that it is in the DLQ (decision 080).
            launch_stuck_after_seconds=visibility * MAX_RECEIVE_COUNT + SWEEPER_MARGIN_SECONDS,
        )

    def certificate_monitor_settings(self) -> CertificateMonitorSettings:
        """Only for `kafka.authentication = mtls` (the function exists only then)."""
        kafka = self.config.kafka
        if kafka.client_certificate_secret_arn is None:
            raise EnvironmentConfigError("the certificate monitor needs kafka.clientCertificateSecretArn (mtls)")
        return CertificateMonitorSettings(
            **self._common("certificate-monitor"),
            client_certificate_secret_arn=kafka.client_certificate_secret_arn,
            expiry_warning_days=kafka.certificate_expiry_warning_days,
        )

    # ------------------------------------------------------------------ scorer token (decision 091)
    def scorer_token_parameter(self) -> str | None:
        """The SSM parameter a scorer task definition references as ACCESS_TOKEN: the refresher's with the Auth0
        proxy (`token.scorerTokenParameter`), else the static token parameter; None when there is none.

        An Auth0-proxy environment whose topcoder_ecs_runner challenges would have no parameter is refused when
        its config loads (`EnvironmentConfig._scorer_token_serves_the_runners`).
        """
        token = self.config.token
        if token.scorer_token_parameter:
            return scorer_token_parameter_name(self.config.ssm_prefix)
        if token.source is TokenSource.STATIC_PARAMETER:
            return static_token_parameter_name(self.config.ssm_prefix)
        return None

    def scorer_token_refresh_margin_seconds(self) -> int:
        """A stored scorer token is replaced once it expires within this long: the longest phase timeout a
        task that reads it can run (topcoder_ecs_runner challenges; every challenge if none is), plus one schedule
        interval (the token ages that much between two checks), plus a slack for the task's start."""
        challenges = [
            c for c in self.config.challenges if c.scorer_environment is ScorerEnvironment.TOPCODER_ECS_RUNNER
        ] or list(self.config.challenges)
        longest = max(
            config.phase_timeout(phase.phase)
            for config in (self.config.challenge_config(c) for c in challenges)
            for phase in config.effective_phases
        )
        return longest + self.config.token.scorer_token_refresh_minutes * 60 + SCORER_TOKEN_SLACK_SECONDS

    def scorer_token_refresher_settings(self) -> ScorerTokenRefresherSettings:
        """Only with `token.scorerTokenParameter` (the function exists only then)."""
        token = self.config.token
        parameter = self.scorer_token_parameter()
        if not token.scorer_token_parameter or parameter is None:
            raise EnvironmentConfigError("the scorer-token refresher needs token.scorerTokenParameter: true")
        assert token.auth0_proxy_url is not None  # auth0_proxy: TokenConfig requires both
        assert token.auth0_credentials_secret_arn is not None
        return ScorerTokenRefresherSettings(
            **self._common("scorer-token-refresher"),
            auth0_proxy_url=token.auth0_proxy_url,
            auth0_credentials_secret_arn=token.auth0_credentials_secret_arn,
            scorer_token_parameter_name=parameter,
            refresh_margin_seconds=self.scorer_token_refresh_margin_seconds(),
        )

    def report_lease_seconds(self) -> int:
        """The completion function's report lease, validated against Lambda's async retry window (decision 080).

        A lease that outlives the last async retry means a crash after the POST leaves the report REPORTING and
        the event in the DLQ: the sweeper re-drives it, but only minutes later. Refused at synth, by name.
        """
        lease = self.config.completion.timeout_seconds + LEASE_MARGIN_SECONDS
        # A retry after an ambiguous POST also waits out the slow-commit window before it looks (decision 074).
        window = CompletionSettings.model_fields["report_slow_commit_seconds"].default
        if lease + window > LAMBDA_ASYNC_RETRY_WINDOW_SECONDS:
            raise EnvironmentConfigError(
                f"completion.timeoutSeconds={self.config.completion.timeout_seconds} gives a report lease of {lease} s "
                f"(timeout + {LEASE_MARGIN_SECONDS} s); with the {window} s slow-commit window that is longer than "
                f"Lambda's async retry window ({LAMBDA_ASYNC_RETRY_WINDOW_SECONDS} s: retries after about 60 s and "
                "120 s more): a crashed report would outlive every retry. Lower completion.timeoutSeconds to at most "
                f"{LAMBDA_ASYNC_RETRY_WINDOW_SECONDS - LEASE_MARGIN_SECONDS - window}"
            )
        return lease

    # ------------------------------------------------------------------ sharding
    def challenge_shards(self) -> dict[int, tuple[ChallengeSettings, ...]]:
        """Shard number -> its challenges (sorted by id), non-empty shards only (decision 050).

        A challenge's shard is its pin or a stable hash of its id, never its position in the config, so adding,
        removing or reordering challenges moves no other challenge. The config refuses a shard over
        `challengesPerStack` (the 500-resource limit).
        """
        return self.config.shard_assignment()


def token_settings_names() -> frozenset[str]:
    return TokenSettings.env_var_names()


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
