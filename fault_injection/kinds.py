"""Every fault the pipeline must survive, by name (decision 077).

Values are kebab-case so they read well on a command line (`--fault ID=KIND[:COUNT]`). Three older names
of the local pipeline stay accepted as aliases (`FaultKind.parse`).
"""

from __future__ import annotations

from enum import StrEnum


class FaultLayer(StrEnum):
    """Who injects the fault: a botocore client hook, an HTTP session adapter, or the driver itself."""

    BOTOCORE = "botocore"
    HTTP = "http"
    EVENT = "event"  # decided by the simulator / local engine via `FaultPlan.fire`


class FaultKind(StrEnum):
    # ---- SNS (router -> challenge queues)
    SNS_PUBLISH_PARTIAL_FAILURE = "sns-publish-partial-failure"  # matching entries land in Failed[]
    SNS_OUTAGE = "sns-outage"  # PublishBatch answers 500 InternalError
    # ---- DynamoDB (status table)
    DYNAMODB_THROTTLING = "dynamodb-throttling"  # ProvisionedThroughputExceededException (400)
    DYNAMODB_OUTAGE = "dynamodb-outage"  # InternalServerError (500)
    DYNAMODB_CONDITION_RACE = "dynamodb-condition-race"  # the same write by a concurrent writer lands first
    # ---- SSM (challenge config, token parameter)
    SSM_THROTTLING = "ssm-throttling"  # ThrottlingException (400)
    SSM_OUTAGE = "ssm-outage"  # InternalServerError (500)
    # ---- ECS RunTask
    RUN_TASK_FAILURES = "run-task-failures"  # 200 with failures[] ("Capacity is unavailable"), no task
    RUN_TASK_THROTTLING = "run-task-throttling"  # ThrottlingException (400), no task
    RUN_TASK_CONFLICT = "run-task-conflict"  # an earlier call with this clientToken and other parameters won
    RUN_TASK_5XX_BEFORE_START = "run-task-5xx-before-start"  # ServerException (500), no task
    RUN_TASK_5XX_AFTER_START = "run-task-5xx-after-start"  # the task starts, the caller sees ServerException
    RUN_TASK_TIMEOUT_BEFORE_START = "run-task-timeout-before-start"  # ReadTimeoutError, no task
    RUN_TASK_TIMEOUT_AFTER_START = "run-task-timeout-after-start"  # the task starts, the caller times out
    CRASH_AFTER_RUN_TASK = "crash-after-run-task"  # the task starts, the Lambda dies before recording it
    # ---- Topcoder Submission API
    TOPCODER_5XX = "topcoder-5xx"  # 503, nothing committed
    TOPCODER_429 = "topcoder-429"  # 429 with Retry-After, nothing committed
    TOPCODER_TIMEOUT = "topcoder-timeout"  # read timeout, nothing committed
    TOPCODER_SLOW_COMMIT = "topcoder-slow-commit"  # read timeout; the write commits `commit_delay_seconds` later
    TOPCODER_401_ROTATED = "topcoder-401-rotated"  # 401 for the token in use; a refreshed token works
    TOPCODER_401_REVOKED = "topcoder-401-revoked"  # 401 whatever the token
    TOPCODER_400 = "topcoder-400"  # 400 Bad Request, nothing committed
    TOPCODER_404 = "topcoder-404"  # 404 Not Found, nothing committed
    CRASH_AFTER_REVIEW_POST = "crash-after-review-post"  # the POST commits, the Lambda dies before recording
    # ---- delivery (decided by the driver)
    SQS_DUPLICATE_DELIVERY = "sqs-duplicate-delivery"  # two receives of one message at once
    KAFKA_REDELIVERY = "kafka-redelivery"  # the same record again in a later batch (`delay_seconds`)
    STOPPED_EVENT_DUPLICATE = "stopped-event-duplicate"
    STOPPED_EVENT_REORDERED = "stopped-event-reordered"  # delivered after a later event (e.g. a retry's)
    STOPPED_EVENT_DELAYED = "stopped-event-delayed"  # delivered `delay_seconds` late
    STOPPED_EVENT_LOST = "stopped-event-lost"
    # ---- ECS task behaviour (decided by the driver)
    TASK_FAILED_TO_START = "task-failed-to-start"  # stopCode TaskFailedToStart, containers []
    SCORER_OVERRUN = "scorer-overrun"  # the scorer runs past its timeout (`run_seconds`)
    ECS_FORGETS_STOPPED_TASK = "ecs-forgets-stopped-task"  # DescribeTasks answers MISSING (`after_seconds`)

    @classmethod
    def parse(cls, text: str) -> FaultKind:
        """A kind by value or by one of the local pipeline's older names; ValueError names the choices."""
        name = text.strip()
        alias = FAULT_KIND_ALIASES.get(name)
        if alias is not None:
            return alias
        try:
            return cls(name)
        except ValueError:
            choices = ", ".join([*(k.value for k in cls), *FAULT_KIND_ALIASES])
            raise ValueError(f"unknown fault kind {name!r} (one of {choices})") from None

    @property
    def layer(self) -> FaultLayer:
        return _LAYERS.get(self, FaultLayer.EVENT)


# The local pipeline's `--fault` names before this layer existed (local_pipeline/fargate.py).
FAULT_KIND_ALIASES: dict[str, FaultKind] = {
    "capacity": FaultKind.RUN_TASK_FAILURES,
    "throttle": FaultKind.RUN_TASK_THROTTLING,
    "lose-stopped-event": FaultKind.STOPPED_EVENT_LOST,
}

BOTOCORE_KINDS = frozenset(
    {
        FaultKind.SNS_PUBLISH_PARTIAL_FAILURE,
        FaultKind.SNS_OUTAGE,
        FaultKind.DYNAMODB_THROTTLING,
        FaultKind.DYNAMODB_OUTAGE,
        FaultKind.DYNAMODB_CONDITION_RACE,
        FaultKind.SSM_THROTTLING,
        FaultKind.SSM_OUTAGE,
        FaultKind.RUN_TASK_FAILURES,
        FaultKind.RUN_TASK_THROTTLING,
        FaultKind.RUN_TASK_CONFLICT,
        FaultKind.RUN_TASK_5XX_BEFORE_START,
        FaultKind.RUN_TASK_5XX_AFTER_START,
        FaultKind.RUN_TASK_TIMEOUT_BEFORE_START,
        FaultKind.RUN_TASK_TIMEOUT_AFTER_START,
        FaultKind.CRASH_AFTER_RUN_TASK,
    }
)
HTTP_KINDS = frozenset(
    {
        FaultKind.TOPCODER_5XX,
        FaultKind.TOPCODER_429,
        FaultKind.TOPCODER_TIMEOUT,
        FaultKind.TOPCODER_SLOW_COMMIT,
        FaultKind.TOPCODER_401_ROTATED,
        FaultKind.TOPCODER_401_REVOKED,
        FaultKind.TOPCODER_400,
        FaultKind.TOPCODER_404,
        FaultKind.CRASH_AFTER_REVIEW_POST,
    }
)
_LAYERS = {**dict.fromkeys(BOTOCORE_KINDS, FaultLayer.BOTOCORE), **dict.fromkeys(HTTP_KINDS, FaultLayer.HTTP)}

__all__ = ["BOTOCORE_KINDS", "FAULT_KIND_ALIASES", "HTTP_KINDS", "FaultKind", "FaultLayer"]
