"""Fan-out: one KMS key, one SNS topic, and per challenge an SQS queue + DLQ subscribed with a filter policy.

SNS cannot deliver to queues under the AWS-managed `aws/sqs` key, so topic and queues share one
customer-managed key with rotation (decision 043). Every queue and topic refuses non-TLS requests.
Each AWS service that writes into the key's topics/queues is allowed the key only from its own source
(decision 081): SNS from the submissions topic, CloudWatch from this account's alarms.
"""

from __future__ import annotations

from aws_cdk import Duration, Names, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infrastructure.mm_constructs.arns import Arns
from infrastructure.mm_constructs.nag import acknowledge
from infrastructure.wiring import DLQ_RETENTION_DAYS, QueuePlan, WiringPlan


def encrypted_queue(
    scope: Construct,
    construct_id: str,
    *,
    name: str,
    key: kms.IKey,
    retention_days: int = DLQ_RETENTION_DAYS,
    dead_letter_queue: sqs.DeadLetterQueue | None = None,
    visibility_timeout_seconds: int | None = None,
    terminal_reason: str | None = None,
    redriven_from_this_stack: bool = False,
) -> sqs.Queue:
    """A KMS-encrypted, TLS-only queue. A queue without a DLQ must say why (`terminal_reason`)."""
    queue = sqs.Queue(
        scope,
        construct_id,
        queue_name=name,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        data_key_reuse=Duration.minutes(15),  # fewer KMS calls; the key is ours anyway
        enforce_ssl=True,
        retention_period=Duration.days(retention_days),
        dead_letter_queue=dead_letter_queue,
        visibility_timeout=Duration.seconds(visibility_timeout_seconds) if visibility_timeout_seconds else None,
        removal_policy=RemovalPolicy.DESTROY,
    )
    if dead_letter_queue is None:
        if terminal_reason is None:
            raise ValueError(f"{name}: a queue without a dead-letter queue needs a terminal_reason")
        if not redriven_from_this_stack:  # AwsSolutions-SQS3 knows a DLQ a queue of its stack redrives to
            acknowledge(queue, "AwsSolutions-SQS3", terminal_reason)
        acknowledge(queue, "Serverless-SQSRedrivePolicy", terminal_reason)
    return queue


KEPT_KEY_PENDING_DAYS = 30  # the longest window: time to notice a mistaken deletion
DISPOSABLE_KEY_PENDING_DAYS = 7  # the shortest KMS allows


def submissions_topic_arn(plan: WiringPlan) -> str:
    """The topic's ARN from its fixed name: a token would make key and topic reference each other (a cycle)."""
    arns = Arns.of(plan.config)
    return f"arn:{arns.partition}:sns:{arns.region}:{arns.account}:{plan.names.submissions_topic}"


def service_key_statements(plan: WiringPlan) -> list[iam.PolicyStatement]:
    """What AWS services may do with the pipeline key, each conditioned on the source that writes (decision 081).

    SNS encrypts deliveries into the challenge queues and the fan-out DLQ (source: the submissions topic).
    CloudWatch publishes alarm notifications into the encrypted alarm topic (source: this account's alarms).
    EventBridge puts undeliverable STOPPED events into the completion DLQ; AWS documents no aws:SourceArn
    for that KMS request, so it keeps the account condition only.
    """
    arns = Arns.of(plan.config)
    account = {"aws:SourceAccount": plan.config.account}
    sources: dict[str, dict[str, dict[str, str]]] = {
        "sns.amazonaws.com": {"ArnEquals": {"aws:SourceArn": submissions_topic_arn(plan)}},
        "events.amazonaws.com": {"StringEquals": account},
        "cloudwatch.amazonaws.com": {
            "StringEquals": account,
            "ArnLike": {"aws:SourceArn": f"arn:{arns.partition}:cloudwatch:{arns.region}:{arns.account}:alarm:*"},
        },
    }
    return [
        iam.PolicyStatement(
            sid=f"Allow{service.split('.')[0].title()}",
            principals=[iam.ServicePrincipal(service)],
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=["*"],  # in a key policy, "*" means this key
            conditions=conditions,
        )
        for service, conditions in sources.items()
    ]


class FanOut(Construct):
    """The pipeline's KMS key, the submissions topic, and the DLQ of undeliverable SNS->SQS deliveries."""

    def __init__(self, scope: Construct, construct_id: str, *, plan: WiringPlan) -> None:
        super().__init__(scope, construct_id)
        names = plan.names
        config = plan.config
        self.key = kms.Key(
            self,
            "Key",
            alias=f"alias/{names.submissions_topic}",
            description=f"mm-processor {config.environment}: SNS topics and SQS queues",
            enable_key_rotation=True,
            # Decisions 045/081: where data is kept the key outlives the stack; a developer's environment cleans up.
            removal_policy=RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY,
            pending_window=Duration.days(KEPT_KEY_PENDING_DAYS if config.retain_data else DISPOSABLE_KEY_PENDING_DAYS),
        )
        for statement in service_key_statements(plan):
            self.key.add_to_resource_policy(statement)
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=names.submissions_topic,
            display_name=f"mm-processor {plan.config.environment} submissions",
            master_key=self.key,
            enforce_ssl=True,
        )
        self.subscription_dlq = encrypted_queue(
            self,
            "SubscriptionDlq",
            name=names.fanout_dlq,
            key=self.key,
            terminal_reason="Dead-letter queue of SNS->SQS deliveries: terminal by design, alarmed when not empty",
        )


class ChallengeQueue(Construct):
    """One challenge's queue and DLQ (from the wiring plan) subscribed to the topic with its filter policy."""

    def __init__(self, scope: Construct, construct_id: str, *, plan: QueuePlan, fanout: FanOut) -> None:
        super().__init__(scope, construct_id)
        self.dlq = encrypted_queue(
            self,
            "Dlq",
            name=plan.dlq_name,
            key=fanout.key,
            retention_days=plan.dlq_retention_seconds // 86_400,
            terminal_reason="This is the challenge's dead-letter queue: terminal by design, alarmed when not empty",
            redriven_from_this_stack=True,
        )
        self.queue = encrypted_queue(
            self,
            "Queue",
            name=plan.queue_name,
            key=fanout.key,
            retention_days=plan.retention_seconds // 86_400,
            visibility_timeout_seconds=plan.visibility_timeout_seconds,
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=plan.max_receive_count, queue=self.dlq),
        )
        # Not `SqsSubscription`: it also adds an unconditioned SNS statement to the key policy (its
        # restrictSqsDescryption flag would reference the topic from the key: a cycle). The same construct path
        # keeps the subscription's logical id, so deployed subscriptions are updated, never replaced.
        allow_topic = self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["sqs:SendMessage"],
                principals=[iam.ServicePrincipal("sns.amazonaws.com")],
                resources=[self.queue.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": fanout.topic.topic_arn}},
            )
        )
        subscription = sns.Subscription(
            self.queue,
            Names.node_unique_id(fanout.topic.node),
            topic=fanout.topic,
            protocol=sns.SubscriptionProtocol.SQS,
            endpoint=self.queue.queue_arn,
            raw_message_delivery=True,
            dead_letter_queue=fanout.subscription_dlq,
            filter_policy={
                attribute: sns.SubscriptionFilter.string_filter(allowlist=list(values))
                for attribute, values in plan.filter_policy.items()
            },
        )
        if allow_topic.policy_dependable is not None:
            subscription.node.add_dependency(allow_topic.policy_dependable)  # no delivery before the queue allows it
