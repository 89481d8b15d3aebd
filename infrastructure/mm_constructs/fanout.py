"""Fan-out: one KMS key, one SNS topic, and per challenge an SQS queue + DLQ subscribed with a filter policy.

SNS cannot deliver to queues under the AWS-managed `aws/sqs` key, so topic and queues share one
customer-managed key with rotation (decision 043). Every queue and topic refuses non-TLS requests.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

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
        acknowledge(queue, "AwsSolutions-SQS3", terminal_reason)
        acknowledge(queue, "Serverless-SQSRedrivePolicy", terminal_reason)
    return queue


class FanOut(Construct):
    """The pipeline's KMS key, the submissions topic, and the DLQ of undeliverable SNS->SQS deliveries."""

    def __init__(self, scope: Construct, construct_id: str, *, plan: WiringPlan) -> None:
        super().__init__(scope, construct_id)
        names = plan.names
        self.key = kms.Key(
            self,
            "Key",
            alias=f"alias/{names.submissions_topic}",
            description=f"mm-processor {plan.config.environment}: SNS topics and SQS queues",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,  # decision 045: never orphan messages or retained data
        )
        # AWS services that write into our encrypted topic/queues need the data key.
        for service in ("sns.amazonaws.com", "events.amazonaws.com", "cloudwatch.amazonaws.com"):
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"Allow{service.split('.')[0].title()}",
                    principals=[iam.ServicePrincipal(service)],
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=["*"],  # in a key policy, "*" means this key
                    conditions={"StringEquals": {"aws:SourceAccount": plan.config.account}},
                )
            )
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
        fanout.topic.add_subscription(
            subscriptions.SqsSubscription(
                self.queue,
                raw_message_delivery=True,
                dead_letter_queue=fanout.subscription_dlq,
                filter_policy={
                    attribute: sns.SubscriptionFilter.string_filter(allowlist=list(values))
                    for attribute, values in plan.filter_policy.items()
                },
            )
        )
