"""Create the emulated resources from the wiring plan, the same plan the CDK stacks are built from.

Names, queue settings, redrive, filter policies, the rule pattern, the SSM challenge documents (with each
challenge's capacity), the environment's caps parameter `<ssmPrefix>/capacity`, the capacity table, the
challenge-table rows and every function's environment come from `infrastructure.wiring.WiringPlan`, so the local
functions enforce the deployed caps with the same code (decision 098).
What differs locally is explicit in `LocalDeviations` (time compressed so a run takes seconds) and in
the few local-only resources named `*-local-*` (an observation tap on the topic, and the queue that
stands in for EventBridge's Lambda target: moto delivers rule matches to SQS, not to Lambda).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from infrastructure.wiring import (
    CHALLENGE_HANDLER,
    COMPLETION_HANDLER,
    DLQ_RETENTION_DAYS,
    ROUTER_HANDLER,
    SWEEPER_HANDLER,
    ResourceRefs,
    WiringPlan,
    dynamodb_item,
)
from local_pipeline.awsenv import LocalAws
from local_pipeline.deviations import LocalDeviations
from mm_capacity.store import CAPACITY_TABLE_TTL, capacity_table_definition
from mm_contracts.names import static_token_parameter_name
from mm_contracts.settings import (
    ChallengeProcessorSettings,
    CompletionSettings,
    EnvSettings,
    RouterSettings,
    TimeoutSweeperSettings,
    TokenSource,
)
from mm_contracts.tables import (
    AUDIT_MARKS_TTL,
    STATUS_TABLE_TTL,
    audit_marks_table_definition,
    challenge_table_definition,
    status_table_definition,
)

# Local-only resources (not in the stacks): an unfiltered raw subscription that lets the engine see
# what the router published, and the SQS target standing in for the completion rule's Lambda target.
LOCAL_TAP_SUFFIX = "local-routed-tap"
LOCAL_COMPLETION_EVENTS_SUFFIX = "local-completion-events"
COMPLETION_TARGET_ID = "completion"
LOCAL_AUTH0_SECRET_NAME = "mm-processor/local/auth0-client"  # + `/<environment>`: environments side by side


def local_auth0_secret_name(environment: str) -> str:
    return f"{LOCAL_AUTH0_SECRET_NAME}/{environment}"


@dataclass(frozen=True)
class TopcoderEndpoints:
    """Where the functions reach Topcoder locally (the stand-in) and the token the static parameter holds."""

    submission_api_url: str
    token_url: str
    static_token: str
    review_api_url: str | None = None  # review-api-v6 (summations), `/v6` included


@dataclass(frozen=True)
class ChallengeResources:
    challenge_id: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    subscription_arn: str
    function_name: str
    settings: ChallengeProcessorSettings


@dataclass(frozen=True)
class LocalFunction:
    """One function as the stack defines it: its name, handler and settings (-> environment)."""

    name: str
    handler: str
    settings: EnvSettings
    timeout_seconds: int
    memory_mb: int
    # How many invocations may run at once, as deployed: a challenge processor's queue mapping's maximum
    # concurrency (within the function's reserved concurrency, if any), else the function's reserved concurrency.
    concurrency: int = 1

    def env(self) -> dict[str, str]:
        return self.settings.to_env()


@dataclass
class LocalResources:
    topic_arn: str
    status_table: str
    challenge_table: str
    capacity_table: str
    capacity_parameter_name: str  # `<ssmPrefix>/capacity`: the environment's caps (JSON)
    audit_queue_url: str
    router_failure_bucket: str  # the Kafka on-failure destination (decision 055)
    completion_events_queue_url: str
    completion_dlq_url: str
    tap_queue_url: str
    fanout_dlq_url: str
    rule_name: str
    token_parameter_name: str
    challenges: dict[str, ChallengeResources] = field(default_factory=dict)
    functions: dict[str, LocalFunction] = field(default_factory=dict)  # by function name


def _queue_arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def _with(settings: EnvSettings, **updates: Any) -> Any:
    """A settings copy with local *values* (never names), validated again."""
    return type(settings).model_validate({**settings.model_dump(), **updates})


def _known(settings_type: type[EnvSettings], values: dict[str, Any]) -> dict[str, Any]:
    """Only the local values the settings model has (a field another change has not added yet is skipped)."""
    return {name: value for name, value in values.items() if name in settings_type.model_fields}


def provision(
    plan: WiringPlan,
    aws: LocalAws,
    topcoder: TopcoderEndpoints,
    deviations: LocalDeviations | None = None,
) -> LocalResources:
    deviations = deviations or LocalDeviations()
    sqs, sns, ddb, ssm, events = (aws.client(s) for s in ("sqs", "sns", "dynamodb", "ssm", "events"))
    names = plan.names
    config = plan.config

    # ---- tables
    ddb.create_table(**status_table_definition(names.status_table))
    ddb.update_time_to_live(TableName=names.status_table, TimeToLiveSpecification=STATUS_TABLE_TTL)
    ddb.create_table(**challenge_table_definition(names.challenge_table))
    ddb.create_table(**audit_marks_table_definition(names.audit_marks_table))
    ddb.update_time_to_live(TableName=names.audit_marks_table, TimeToLiveSpecification=AUDIT_MARKS_TTL)
    ddb.create_table(**capacity_table_definition(names.capacity_table))
    ddb.update_time_to_live(TableName=names.capacity_table, TimeToLiveSpecification=CAPACITY_TABLE_TTL)

    # ---- topic, router queues
    topic_arn = sns.create_topic(Name=names.submissions_topic)["TopicArn"]
    terminal = {"MessageRetentionPeriod": str(DLQ_RETENTION_DAYS * 86_400)}
    audit_url = sqs.create_queue(QueueName=names.audit_queue, Attributes=terminal)["QueueUrl"]
    router_failure_bucket = names.router_failure_bucket(config.account, config.region)
    aws.client("s3").create_bucket(Bucket=router_failure_bucket)
    fanout_dlq_url = sqs.create_queue(QueueName=names.fanout_dlq, Attributes=terminal)["QueueUrl"]
    fanout_redrive = json.dumps({"deadLetterTargetArn": _queue_arn(sqs, fanout_dlq_url)})
    tap_url = sqs.create_queue(QueueName=f"mm-{config.environment}-{LOCAL_TAP_SUFFIX}")["QueueUrl"]
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=_queue_arn(sqs, tap_url),
        Attributes={"RawMessageDelivery": "true"},
        ReturnSubscriptionArn=True,
    )

    refs = ResourceRefs(
        sns_topic_arn=topic_arn,
        challenge_table_name=names.challenge_table,
        status_table_name=names.status_table,
        audit_queue_url=audit_url,
        capacity_table_name=names.capacity_table,
    )
    # The environment's caps, as the core stack writes them (the config's `capacity` block).
    ssm.put_parameter(
        Name=plan.capacity_parameter(), Value=plan.environment_capacity().to_json(), Type="String", Overwrite=True
    )
    capacity_values = {"capacity_cache_seconds": deviations.capacity_cache_seconds}

    # ---- token: the static parameter holds a token the stand-in issued; auth0 mode gets a client secret
    token_parameter = static_token_parameter_name(config.ssm_prefix)
    ssm.put_parameter(Name=token_parameter, Value=topcoder.static_token, Type="SecureString", Overwrite=True)
    token_updates: dict[str, Any] = {}
    if config.token.source is TokenSource.AUTH0_PROXY:
        secret = aws.client("secretsmanager").create_secret(
            Name=local_auth0_secret_name(config.environment),
            SecretString=json.dumps(
                {
                    "client_id": "mm-processor-local",
                    "client_secret": "local-client-secret",
                    "auth0_url": "https://topcoder-dev.auth0.com/oauth/token",
                    "audience": "https://m2m.topcoder-dev.com/",
                }
            ),
        )
        token_updates = {"auth0_proxy_url": topcoder.token_url, "auth0_credentials_secret_arn": secret["ARN"]}

    # ---- per challenge: queue + DLQ with redrive, filtered raw subscription, SSM config, processor
    queue_urls: dict[str, str] = {}
    challenges: dict[str, ChallengeResources] = {}
    functions: dict[str, LocalFunction] = {}
    for challenge in config.challenges:
        qp = plan.queue_plan(challenge)
        dlq_url = sqs.create_queue(
            QueueName=qp.dlq_name, Attributes={"MessageRetentionPeriod": str(qp.dlq_retention_seconds)}
        )["QueueUrl"]
        dlq_arn = _queue_arn(sqs, dlq_url)
        queue_url = sqs.create_queue(
            QueueName=qp.queue_name,
            Attributes={
                "VisibilityTimeout": str(deviations.queue_visibility_timeout_seconds),
                "MessageRetentionPeriod": str(qp.retention_seconds),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": qp.max_receive_count}),
            },
        )["QueueUrl"]
        queue_arn = _queue_arn(sqs, queue_url)
        subscription_arn = sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={
                "RawMessageDelivery": "true",
                "FilterPolicy": json.dumps(qp.filter_policy),
                "RedrivePolicy": fanout_redrive,
            },
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        queue_urls[challenge.challenge_id] = queue_url

        document = plan.challenge_config(challenge)
        if deviations.challenge_timeout_seconds is not None:
            # The challenge's timeout and each phase's own (a phase without one takes the challenge's).
            local_timeout = deviations.challenge_timeout_seconds
            phases = [
                {**phase.model_dump(), "timeout_seconds": local_timeout if phase.timeout_seconds is not None else None}
                for phase in document.phases
            ]
            document = type(document).model_validate(
                {**document.model_dump(), "timeout_seconds": local_timeout, "phases": phases}
            )
        ssm.put_parameter(
            Name=plan.challenge_config_parameter(challenge.challenge_id),
            Value=document.to_json(),
            Type="String",
            Overwrite=True,
        )
        settings = _with(
            plan.challenge_settings(challenge, refs, queue_url=queue_url),
            **token_updates,
            **_known(ChallengeProcessorSettings, {"launch_lease_seconds": deviations.launch_lease_seconds}),
            **capacity_values,
        )
        function_name = names.challenge_function(challenge.challenge_id)
        challenges[challenge.challenge_id] = ChallengeResources(
            challenge_id=challenge.challenge_id,
            queue_url=queue_url,
            queue_arn=queue_arn,
            dlq_url=dlq_url,
            dlq_arn=dlq_arn,
            subscription_arn=subscription_arn,
            function_name=function_name,
            settings=settings,
        )
        functions[function_name] = LocalFunction(
            name=function_name,
            handler=CHALLENGE_HANDLER,
            settings=settings,
            timeout_seconds=config.challenge_processor.timeout_seconds,
            memory_mb=config.challenge_processor.memory_mb,
            concurrency=min(
                plan.queue_plan(challenge).max_concurrency,
                config.challenge_processor.reserved_concurrency or config.account_concurrency_limit,
            ),
        )

    for record in plan.challenge_records(queue_urls):
        ddb.put_item(TableName=names.challenge_table, Item=dynamodb_item(record))

    # ---- completion: rule with the plan's pattern -> (local) SQS target -> completion worker
    completion_dlq_url = sqs.create_queue(QueueName=names.completion_dlq, Attributes=terminal)["QueueUrl"]
    completion_events_url = sqs.create_queue(
        QueueName=f"mm-{config.environment}-{LOCAL_COMPLETION_EVENTS_SUFFIX}",
        Attributes={
            "VisibilityTimeout": str(deviations.completion_visibility_timeout_seconds),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": _queue_arn(sqs, completion_dlq_url), "maxReceiveCount": 3}
            ),
        },
    )["QueueUrl"]
    events.put_rule(
        Name=names.completion_rule, EventPattern=json.dumps(plan.completion_rule_pattern()), State="ENABLED"
    )
    events.put_targets(
        Rule=names.completion_rule,
        Targets=[{"Id": COMPLETION_TARGET_ID, "Arn": _queue_arn(sqs, completion_events_url)}],
    )
    # ---- the sweeper's Parameter Store change rule (decision 121), for parity with the stacks. moto's SSM emits no
    # change events, so it has no target here: locally `caps set` stamps the versions itself and the engine's
    # scheduled sweeps stamp the rest.
    events.put_rule(
        Name=names.parameter_change_rule,
        EventPattern=json.dumps(plan.parameter_change_rule_pattern()),
        State="ENABLED",
    )

    router_settings: RouterSettings = plan.router_settings(refs)
    completion_values = {
        "report_lease_seconds": deviations.report_lease_seconds,
        "report_slow_commit_seconds": deviations.report_slow_commit_seconds,
        "report_check_delay_seconds": deviations.report_check_delay_seconds,
        "start_relaunch_delay_seconds": deviations.start_relaunch_delay_seconds,
        "relaunch_check_seconds": deviations.relaunch_check_seconds,
    }
    # Each Topcoder API the environment reports to, on the stand-in (a v6-only environment has no v5 URL).
    api_urls = {
        "submission_api_url": topcoder.submission_api_url if config.submission_api_url else None,
        "review_api_url": topcoder.review_api_url if getattr(config, "review_api_url", None) else None,
    }
    completion_settings: CompletionSettings = _with(
        plan.completion_settings(refs),
        **_known(CompletionSettings, api_urls),
        **token_updates,
        **_known(CompletionSettings, completion_values),
        **capacity_values,
    )
    sweeper_values = {
        "reconcile_grace_seconds": deviations.reconcile_grace_seconds,
        "event_grace_seconds": deviations.sweeper_event_grace_seconds,
        "orphan_settle_seconds": deviations.sweeper_orphan_settle_seconds,
        "overrun_grace_seconds": deviations.sweeper_overrun_grace_seconds,
        "launch_stuck_after_seconds": deviations.sweeper_launch_stuck_after_seconds,
        "report_retry_interval_seconds": deviations.sweeper_report_retry_interval_seconds,
        "liveness_check_seconds": deviations.sweeper_liveness_check_seconds,
        "slot_reconcile_grace_seconds": deviations.slot_reconcile_grace_seconds,
        **capacity_values,
    }
    sweeper_settings: TimeoutSweeperSettings = _with(
        plan.sweeper_settings(refs), **_known(TimeoutSweeperSettings, sweeper_values)
    )
    for name, handler, settings, sizing in (
        (names.router_function, ROUTER_HANDLER, router_settings, config.router),
        (names.completion_function, COMPLETION_HANDLER, completion_settings, config.completion),
        (
            names.sweeper_function,
            SWEEPER_HANDLER,
            sweeper_settings,
            config.timeout_sweeper,
        ),
    ):
        functions[name] = LocalFunction(
            name=name,
            handler=handler,
            settings=settings,
            timeout_seconds=sizing.timeout_seconds,
            memory_mb=sizing.memory_mb,
            concurrency=sizing.reserved_concurrency or config.account_concurrency_limit,
        )

    return LocalResources(
        topic_arn=topic_arn,
        status_table=names.status_table,
        challenge_table=names.challenge_table,
        capacity_table=names.capacity_table,
        capacity_parameter_name=plan.capacity_parameter(),
        audit_queue_url=audit_url,
        router_failure_bucket=router_failure_bucket,
        completion_events_queue_url=completion_events_url,
        completion_dlq_url=completion_dlq_url,
        tap_queue_url=tap_url,
        fanout_dlq_url=fanout_dlq_url,
        rule_name=names.completion_rule,
        token_parameter_name=token_parameter,
        challenges=challenges,
        functions=functions,
    )
