"""Deliveries into SQS without a pass over the queue per message, EventBridge input paths parsed once: the seventh
place the emulator reaches into moto, in its services process only (decision 115; `sqs_receive` is the other one
there).

**SendMessage.** moto 5.2.5's `SQSBackend.send_message` (moto/sqs/models.py), which SNS -> SQS and EventBridge -> SQS
deliveries also call, reads `queue.attributes.get("ContentBasedDeduplication")`; `Queue.attributes` builds every
attribute of the queue, and three of them (`ApproximateNumberOfMessages`, `...NotVisible`, `...Delayed`) each walk
every message in the queue: O(queue depth) per message sent, so a burst of n submissions into one challenge queue
costs O(n^2). While `send_message` runs, on its own thread, `install()` makes `Queue.attributes` of the queue it
sends to answer a mapping that gives that one attribute the way moto builds it (present only on a FIFO queue,
`content_based_deduplication` with a bool written "true"/"false") and builds moto's whole dict, once, for any
other read. Validation, deduplication, delays, FIFO groups and the message itself stay moto's.

**EventBridge input paths.** moto's `EventTemplateParser.parse` (moto/events/utils.py), run for every target with an
InputTransformer of every matching rule, calls `jsonpath_ng.ext.parse` for each input path, and that builds a new
ply LR parser each time (~15 % of the services process). `install()` makes `jsonpath_ng.ext.parse` answer the
expression it parsed before for the same path (at most `PATHS_KEPT` kept; a path that fails to parse raises every
time). jsonpath_ng's expressions are not changed by `find` (it builds new `DatumInContext` results), so one serves
every call. In this process moto's Step Functions (the other user of that function) is not used.

Pinned like the others: nothing changes unless moto is exactly `PINNED_MOTO_VERSION`;
tests/local_pipeline/test_emulator_services_delivery.py compares wrapped and unwrapped answers.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jsonpath_ng.ext
from moto.sqs.models import Queue, SQSBackend

from local_pipeline.emulator.dynamodb_transactions import PINNED_MOTO_VERSION

PATHS_KEPT = 1024
_WRAPPED = "_mm_delivery_wrapper"
_DEDUPLICATION = "ContentBasedDeduplication"
_log = logging.getLogger(__name__)
_sending = threading.local()


class AttributesWhileSending(Mapping[str, Any]):
    """`Queue.attributes` of the queue a SendMessage goes to: `ContentBasedDeduplication` without the message counts,
    anything else from moto's own dict (built on first need)."""

    def __init__(self, queue: Queue, build: Callable[[Queue], dict[str, Any]]) -> None:
        self._queue = queue
        self._build = build
        self._whole: dict[str, Any] | None = None

    def _moto(self) -> dict[str, Any]:
        if self._whole is None:
            self._whole = self._build(self._queue)
        return self._whole

    def get(self, key: str, default: Any = None) -> Any:
        if key != _DEDUPLICATION or self._whole is not None:
            return self._moto().get(key, default)
        if not self._queue.fifo_queue:  # moto adds the FIFO attributes to a FIFO queue only
            return default
        queue: Any = self._queue  # moto sets `content_based_deduplication` in `_set_attributes`
        value = queue.content_based_deduplication
        return str(value).lower() if isinstance(value, bool) else value

    def __getitem__(self, key: str) -> Any:
        return self._moto()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._moto())

    def __len__(self) -> int:
        return len(self._moto())


def _wrap_attributes(original: property) -> property:
    build = original.fget
    assert build is not None

    def attributes(self: Queue) -> Any:
        if getattr(_sending, "queue", None) is self:
            return AttributesWhileSending(self, build)
        return build(self)

    setattr(attributes, _WRAPPED, original)
    return property(attributes, doc=original.__doc__)


def _wrap_send(original: Callable[..., Any]) -> Callable[..., Any]:
    def send_message(self: SQSBackend, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        before = getattr(_sending, "queue", None)
        try:
            _sending.queue = self.get_queue(queue_name)
        except Exception:  # an unknown queue: moto raises its own error
            _sending.queue = None
        try:
            return original(self, queue_name, *args, **kwargs)
        finally:
            _sending.queue = before

    setattr(send_message, _WRAPPED, original)
    send_message.__doc__ = original.__doc__
    return send_message


def _wrap_parse(original: Callable[..., Any]) -> Callable[..., Any]:
    cached = functools.lru_cache(maxsize=PATHS_KEPT)(original)

    def parse(path: str, debug: bool | None = None) -> Any:
        try:
            return cached(path, debug)
        except TypeError:  # an unhashable argument: jsonpath_ng's own answer
            return original(path, debug)

    setattr(parse, _WRAPPED, original)
    parse.__doc__ = original.__doc__
    return parse


def install() -> bool:
    """Wrap moto's send and jsonpath_ng's parse (see the module docstring); False, changing nothing, on another moto
    version or when already installed."""
    if hasattr(SQSBackend.send_message, _WRAPPED):
        return False
    version = importlib.metadata.version("moto")
    if version != PINNED_MOTO_VERSION:
        _log.warning("moto %s is not %s: deliveries left as moto has them", version, PINNED_MOTO_VERSION)
        return False
    attributes = Queue.__dict__["attributes"]
    Queue.attributes = _wrap_attributes(attributes)  # type: ignore[assignment,method-assign]
    SQSBackend.send_message = _wrap_send(SQSBackend.send_message)  # type: ignore[method-assign]
    jsonpath_ng.ext.parse = _wrap_parse(jsonpath_ng.ext.parse)
    return True


def uninstall() -> None:
    """moto's and jsonpath_ng's own functions back (for tests)."""
    original_send = getattr(SQSBackend.send_message, _WRAPPED, None)
    if original_send is not None:
        SQSBackend.send_message = original_send  # type: ignore[method-assign]
    attributes = Queue.__dict__["attributes"]
    original_attributes = getattr(attributes.fget, _WRAPPED, None)
    if original_attributes is not None:
        Queue.attributes = original_attributes  # type: ignore[method-assign]
    original_parse = getattr(jsonpath_ng.ext.parse, _WRAPPED, None)
    if original_parse is not None:
        jsonpath_ng.ext.parse = original_parse
