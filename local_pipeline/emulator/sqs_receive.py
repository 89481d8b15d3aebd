"""ReceiveMessage without recomputing every queue attribute per message: the fifth place the emulator reaches into
moto, in its services process only (decision 115; the others are DynamoDB's).

moto 5.2.5's `SQSBackend.receive_message` (moto/sqs/models.py) checks each message it returns with
`is_message_valid_based_on_retention_period`, which reads the retention period through
`get_queue_attributes(queue_name, ["MessageRetentionPeriod"])`; that builds `Queue.attributes` three times, and
each build counts the queue's messages (`ApproximateNumberOfMessages`, `...NotVisible`, `...Delayed`): a pass over
the queue per returned message, so a deep queue drained in batches of ten costs O(depth) per message.
`install()` replaces that one check with the same test on the queue's own `message_retention_period` (the int
moto's attribute reports, set by `_set_attributes`), with moto's `unix_time` (so a frozen clock still applies).
Everything else is moto's: visibility, receive counts, FIFO groups, the move to the dead-letter queue at
`maxReceiveCount`, long polling.

Pinned like the others: nothing changes unless moto is exactly `PINNED_MOTO_VERSION`;
tests/local_pipeline/test_emulator_sqs_receive.py compares wrapped and unwrapped answers.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable
from typing import Any

from moto.sqs import models as sqs_models
from moto.sqs.models import Message, SQSBackend

from local_pipeline.emulator.dynamodb_transactions import PINNED_MOTO_VERSION

_WRAPPED = "_mm_retention_check_wrapper"
_log = logging.getLogger(__name__)


def _wrap(original: Callable[..., bool]) -> Callable[..., bool]:
    def is_message_valid_based_on_retention_period(self: SQSBackend, queue_name: str, message: Message) -> bool:
        queue: Any = self.get_queue(queue_name)
        retention_period = queue.message_retention_period
        if retention_period is None:  # moto's attribute lookup would fail: let it
            return original(self, queue_name, message)
        retain_until = retention_period + message.sent_timestamp / 1000  # type: ignore[operator]
        return bool(retain_until > sqs_models.unix_time())

    setattr(is_message_valid_based_on_retention_period, _WRAPPED, original)
    is_message_valid_based_on_retention_period.__doc__ = original.__doc__
    return is_message_valid_based_on_retention_period


def install() -> bool:
    """Wrap moto's retention check (see the module docstring); False, changing nothing, on another moto version or
    when already installed."""
    installed: Any = SQSBackend.is_message_valid_based_on_retention_period
    if hasattr(installed, _WRAPPED):
        return False
    version = importlib.metadata.version("moto")
    if version != PINNED_MOTO_VERSION:
        _log.warning("moto %s is not %s: ReceiveMessage left as moto has it", version, PINNED_MOTO_VERSION)
        return False
    SQSBackend.is_message_valid_based_on_retention_period = _wrap(installed)  # type: ignore[method-assign]
    return True


def uninstall() -> None:
    """moto's own retention check back (for tests)."""
    original = getattr(SQSBackend.is_message_valid_based_on_retention_period, _WRAPPED, None)
    if original is not None:
        SQSBackend.is_message_valid_based_on_retention_period = original  # type: ignore[method-assign]
