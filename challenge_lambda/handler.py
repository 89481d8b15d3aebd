"""Lambda entry point: SQS batch (one challenge queue) -> `ChallengeProcessor`, with partial batch failures.

Glue only. Settings are read from the environment on first use and cached (keyed by the environment
values, so a process that runs several challenge functions, like the local pipeline, gets one
processor per configuration). No AWS client is built at import time. Metrics are written as they
happen (EMF lines, see `observability.py`), so there is no `log_metrics` flush.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from challenge_lambda.observability import PowertoolsMetricsSink
from challenge_lambda.processor import ChallengeProcessor, InboundMessage
from mm_contracts.settings import ChallengeProcessorSettings

_SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "challenge-processor"
logger = Logger(service=_SERVICE)
tracer = Tracer(service=_SERVICE)
# Always answer with batchItemFailures, also when every record failed: the outcome per message is the same
# (each failed one is retried) and the response stays one shape.
batch = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

_processors: dict[tuple[str | None, ...], ChallengeProcessor] = {}


def _environment_key() -> tuple[str | None, ...]:
    return tuple(os.environ.get(name) for name in sorted(ChallengeProcessorSettings.env_var_names()))


def get_processor() -> ChallengeProcessor:
    """The processor for the current environment; settings validated once per configuration."""
    key = _environment_key()
    processor = _processors.get(key)
    if processor is None:
        settings = ChallengeProcessorSettings.from_env()
        processor = ChallengeProcessor.from_settings(
            settings,
            metrics=PowertoolsMetricsSink(
                environment_name=settings.environment_name,
                challenge_id=settings.challenge_id,
                service=settings.powertools_service_name,
                namespace=settings.powertools_metrics_namespace,
            ),
            logger=logger,
        )
        _processors[key] = processor
    return processor


def use_processor(processor: ChallengeProcessor) -> None:
    """Install the processor for the current environment (the test seam: a harness with its own clients)."""
    _processors[_environment_key()] = processor


def reset() -> None:
    """Forget cached processors (tests; a fresh emulator per case)."""
    _processors.clear()


# Not wrapped by tracer.capture_method: it would log and trace each failure's exception text a second time.
def record_handler(record: SQSRecord) -> str:
    processor = get_processor()
    message = InboundMessage(
        message_id=record.message_id,
        body=record.body,
        receive_count=int(record.attributes.approximate_receive_count or 1),
    )
    return processor.process(message).value


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    get_processor()  # a broken environment fails the whole invocation loudly, before any record
    response = process_partial_response(event=event, record_handler=record_handler, processor=batch, context=context)
    return dict(response)
