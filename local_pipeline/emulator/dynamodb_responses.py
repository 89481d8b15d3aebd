"""DynamoDB answers serialized at JSON speed: a second place the emulator reaches into moto (decision 115).

moto 5.2.5 serializes every DynamoDB answer (`DynamoResult.execute_result`, moto/dynamodb/responses.py) with its
generic model-driven serializer, which walks botocore's output shape member by member and, for each attribute
value, tries every member of the `AttributeValue` union (S, N, B, SS, ..., M, L, NULL, BOOL) through a chain of
alias pickers. An item of a status record costs milliseconds that way: about half the DynamoDB emulator
process's CPU at a few hundred submissions (issue 13).

The items in an answer are DynamoDB JSON already (moto's `dynamo_to_dict`), so `install()` wraps that method, in
the DynamoDB emulator process only: for the item-carrying members of the item operations (`Item`, `Attributes`,
`Items`, `LastEvaluatedKey`, BatchGetItem's `Responses`), it takes them out of the result, lets moto serialize
the rest (ConsumedCapacity, Count, UnprocessedKeys, ...: moto's own shapes and number types), and puts them back
into the JSON body as they are. An answer with a binary attribute (`B`, `BS`, which moto's serializer base64s)
or any other operation goes through moto's serializer unchanged.

Before that, `DynamoResult.__init__` turns the result's `DynamoType` values into DynamoDB JSON with moto's
`dynamo_to_dict`, which tests every node for `datetime`, `DynamoType`, `to_json`, dict and list in turn (in a
Query returning a queue's entries at 1,000 submissions, ~30 % of the Query's CPU). `install()` also gives
`DynamoResult` a `dynamo_to_dict` that handles the exact types an item is made of (`str`, `int`, `float`, `bool`,
None, `dict`, `list`, and a `DynamoType` that is not binary) as moto's does, and passes anything else (binary
values, datetimes, objects with `to_json`, subclasses) to moto's own (issue 13, second session).

Pinned like `dynamodb_transactions`: nothing changes unless moto is exactly `PINNED_MOTO_VERSION`;
tests/local_pipeline/test_emulator_dynamodb_responses.py compares both serializers' bodies over the operations.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.dynamodb import responses as dynamodb_handlers
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.responses import DynamoResult

from local_pipeline.emulator.dynamodb_transactions import PINNED_MOTO_VERSION

# Operation -> the members of its output that hold items (DynamoDB JSON), per botocore's dynamodb model.
ITEM_MEMBERS: dict[str, tuple[str, ...]] = {
    "GetItem": ("Item",),
    "PutItem": ("Attributes",),
    "UpdateItem": ("Attributes",),
    "DeleteItem": ("Attributes",),
    "Query": ("Items", "LastEvaluatedKey"),
    "Scan": ("Items", "LastEvaluatedKey"),
    "BatchGetItem": ("Responses",),
}
_BINARY_MARKERS = ('"B":', '"BS":')
_BINARY_TYPES = frozenset({"B", "BS"})
_PLAIN = frozenset({str, int, float, bool, type(None)})
_WRAPPED = "_mm_fast_items_wrapper"

_log = logging.getLogger(__name__)

Serialized = tuple[int, dict[str, Any], str | bytes]


def fast_serialized(original: Callable[..., Serialized], result: ActionResult, context: Any) -> Serialized | None:
    """moto's answer with the item members put in as JSON; None when moto's serializer must do it all."""
    members = ITEM_MEMBERS.get(str(context.operation_model.name))
    body = result.result
    if members is None or not isinstance(body, dict):
        return None
    items = {name: body[name] for name in members if body.get(name) is not None}
    if not items:
        return None
    try:
        items_json = json.dumps(items, separators=(",", ":"))
    except (TypeError, ValueError):  # bytes: a binary attribute
        return None
    if any(marker in items_json for marker in _BINARY_MARKERS):
        return None
    rest = ActionResult({name: value for name, value in body.items() if name not in items})
    status, headers, rest_body = original(rest, context)
    if status != 200:  # an error answer is moto's alone
        return None
    document = json.loads(rest_body) if rest_body else {}
    document.update(json.loads(items_json))
    return status, headers, json.dumps(document)


def _fast_dynamo_to_dict(motos: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def dynamo_to_dict(obj: Any) -> Any:
        kind = type(obj)
        if kind in _PLAIN:  # moto's: not a datetime, DynamoType, to_json, dict or list: as it is
            return obj
        if kind is DynamoType and obj.type not in _BINARY_TYPES:
            return {obj.type: dynamo_to_dict(obj.value)}
        if kind is dict:
            return {k: dynamo_to_dict(v) for k, v in obj.items()}
        if kind is list:
            return [dynamo_to_dict(item) for item in obj]
        return motos(obj)

    setattr(dynamo_to_dict, _WRAPPED, motos)
    dynamo_to_dict.__doc__ = motos.__doc__
    return dynamo_to_dict


def _wrap(original: Callable[..., Serialized]) -> Callable[..., Serialized]:
    def execute_result(self: DynamoResult, context: Any) -> Serialized:
        fast = fast_serialized(original, self, context)
        return fast if fast is not None else original(self, context)

    setattr(execute_result, _WRAPPED, original)
    return execute_result


def install() -> bool:
    """Serialize the item operations' items as JSON (see the module docstring); False, changing nothing, on another
    moto version or when already installed."""
    installed = DynamoResult.execute_result
    if hasattr(installed, _WRAPPED):
        return False
    version = importlib.metadata.version("moto")
    if version != PINNED_MOTO_VERSION:
        _log.warning("moto %s is not %s: DynamoDB answers left to moto's serializer", version, PINNED_MOTO_VERSION)
        return False
    DynamoResult.execute_result = _wrap(installed)  # type: ignore[method-assign]
    dynamodb_handlers.dynamo_to_dict = _fast_dynamo_to_dict(dynamodb_handlers.dynamo_to_dict)  # type: ignore[assignment]
    return True  # (moto's is ActionResult's, inherited: uninstall() deletes the wrapper again)


def uninstall() -> None:
    """moto's own serializer back (for tests)."""
    if hasattr(DynamoResult.execute_result, _WRAPPED):
        del DynamoResult.execute_result
    motos = getattr(dynamodb_handlers.dynamo_to_dict, _WRAPPED, None)
    if motos is not None:
        dynamodb_handlers.dynamo_to_dict = motos
