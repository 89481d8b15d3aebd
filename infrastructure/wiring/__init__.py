"""The wiring plan: every name, setting, filter policy, pattern and function environment of one environment.

Pure Python (no CDK import). The CDK constructs build resources from this plan, and the local pipeline
creates the same resources in the emulator from it, so the two cannot drift silently; tests compare the
synthesized templates with the plan as well.

Deploy-time references (ARNs, URLs) are passed in as `ResourceRefs`: CDK tokens in the stacks, real
values in the emulator.

Modules: `names` (physical names, handlers, service names), `resources` (`ResourcePlan`: queues, Kafka sources,
the completion rule, challenge configs and rows, shards), `plan` (`WiringPlan`: those plus each function's
environment). Import from this package.
"""

from infrastructure.wiring.names import (
    CERTIFICATE_MONITOR_HANDLER,
    CHALLENGE_HANDLER,
    CHALLENGE_ID_PLACEHOLDER,
    COMPLETION_HANDLER,
    MAX_BUCKET_NAME_LENGTH,
    ROUTER_HANDLER,
    SCORER_TOKEN_REFRESHER_HANDLER,
    SWEEPER_HANDLER,
    SWEEPER_SERVICE_NAME,
    ResourceNames,
)
from infrastructure.wiring.plan import SCORER_TOKEN_SLACK_SECONDS, WiringPlan, token_settings_names
from infrastructure.wiring.resources import (
    CHALLENGE_BATCH_SIZE,
    COMPLETION_TARGET_MAX_EVENT_AGE_SECONDS,
    COMPLETION_TARGET_RETRY_ATTEMPTS,
    DLQ_RETENTION_DAYS,
    LEASE_MARGIN_SECONDS,
    MAX_RECEIVE_COUNT,
    QUEUE_RETENTION_DAYS,
    SWEEPER_MARGIN_SECONDS,
    VISIBILITY_TIMEOUT_FACTOR,
    KafkaSourcePlan,
    QueuePlan,
    ResourcePlan,
    ResourceRefs,
    dynamodb_item,
)

__all__ = [
    "CERTIFICATE_MONITOR_HANDLER",
    "CHALLENGE_BATCH_SIZE",
    "CHALLENGE_HANDLER",
    "CHALLENGE_ID_PLACEHOLDER",
    "COMPLETION_HANDLER",
    "COMPLETION_TARGET_MAX_EVENT_AGE_SECONDS",
    "COMPLETION_TARGET_RETRY_ATTEMPTS",
    "DLQ_RETENTION_DAYS",
    "LEASE_MARGIN_SECONDS",
    "MAX_BUCKET_NAME_LENGTH",
    "MAX_RECEIVE_COUNT",
    "QUEUE_RETENTION_DAYS",
    "ROUTER_HANDLER",
    "SCORER_TOKEN_REFRESHER_HANDLER",
    "SCORER_TOKEN_SLACK_SECONDS",
    "SWEEPER_HANDLER",
    "SWEEPER_MARGIN_SECONDS",
    "SWEEPER_SERVICE_NAME",
    "VISIBILITY_TIMEOUT_FACTOR",
    "KafkaSourcePlan",
    "QueuePlan",
    "ResourceNames",
    "ResourcePlan",
    "ResourceRefs",
    "WiringPlan",
    "dynamodb_item",
    "token_settings_names",
]
