"""Lambda entry point: SQS batch (one challenge queue) -> `ChallengeProcessor`, with partial batch failures.

Glue only: the processor comes from `challenge_lambda.wiring` (settings read once per process, no AWS client at
import time); building it first means a broken environment fails the whole invocation loudly, before any record.
Metrics are written as they happen (EMF lines), so there is no `log_metrics` flush.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from challenge_lambda.observability import logger
from challenge_lambda.processor import ChallengeProcessor, InboundMessage
from challenge_lambda.wiring import dependencies


def process_record(processor: ChallengeProcessor, record: dict[str, Any]) -> str:
    message = InboundMessage(
        message_id=record["messageId"],
        body=record["body"],
        receive_count=int(record["attributes"]["ApproximateReceiveCount"] or 1),
    )
    return processor.process(message).value


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    processor = dependencies().processor  # built first: a broken environment fails the invocation, not each record
    # The partial batch response, built here rather than by Powertools' batch utility (its import pulls asyncio and
    # every stream's data classes into the cold start, ~85 ms): a record that raises is reported for a retry, the
    # others are deleted. Always this shape, also when every record failed: each failed one is retried alike.
    # https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting
    failures: list[dict[str, str]] = []
    for record in event["Records"]:
        try:
            process_record(processor, record)
        except Exception:  # logged by the processor with its reason; SQS retries the message
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
