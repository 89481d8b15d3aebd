"""Lambda entry point: SQS batch (one challenge queue) -> `ChallengeProcessor`, with partial batch failures.

Glue only: the processor comes from `challenge_lambda.wiring` (settings read once per process, no AWS client at
import time); building it first means a broken environment fails the whole invocation loudly, before any record.
Metrics are written as they happen (EMF lines), so there is no `log_metrics` flush.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from challenge_lambda.observability import logger, tracer
from challenge_lambda.processor import ChallengeProcessor, InboundMessage
from challenge_lambda.wiring import dependencies

# Always answer with batchItemFailures, also when every record failed: the outcome per message is the same
# (each failed one is retried) and the response stays one shape.
batch = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


# Not wrapped by tracer.capture_method: it would log and trace each failure's exception text a second time.
def process_record(processor: ChallengeProcessor, record: SQSRecord) -> str:
    message = InboundMessage(
        message_id=record.message_id,
        body=record.body,
        receive_count=int(record.attributes.approximate_receive_count or 1),
    )
    return processor.process(message).value


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = dependencies()
    record_handler = partial(process_record, deps.processor)
    return dict(process_partial_response(event=event, record_handler=record_handler, processor=batch, context=context))
