"""The status item on the wire: DynamoDB attribute values to and from `LifecycleRecord`, and the small helpers every
write of the store shares (history entries, timestamps, the conditional-failure test).

`record_from_item` is the one deserializer of a status item: the store, the capacity store and every reader that
scans the table (the local pipeline, the operator tool, the tests) read items through it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from mm_adapters.dynamodb_types import TypeDeserializer, TypeSerializer
from mm_contracts.models.lifecycle import LifecycleRecord

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

# A history entry's detail, a reason and a report response are cut to this many characters.
MAX_DETAIL = 500
# A run's report, as a redrive claim of a dead-lettered run clears it (decision 086).
REPORT_ATTRIBUTES = (
    "reportStatus",
    "reportLeaseUntil",
    "reportAttempt",
    "reportResponse",
    "reportAmbiguousAt",
    "reportRetryAttempt",
    "reportedAt",
    "testStatus",
)


def record_from_item(item: dict[str, Any]) -> LifecycleRecord:
    """A status item as DynamoDB returns it (attribute values) as a record: for readers that scan the table."""
    plain = {name: _deserializer.deserialize(value) for name, value in item.items()}
    return LifecycleRecord.model_validate(plain_numbers(plain))


def attribute_values(values: dict[str, Any]) -> dict[str, Any]:
    """Plain Python values (by attribute or placeholder name) as DynamoDB attribute values."""
    return {name: _serializer.serialize(value) for name, value in values.items()}


def attribute_value(value: Any) -> Any:
    """One DynamoDB attribute value as a plain Python value (numbers as Decimal, as boto3 gives them)."""
    return _deserializer.deserialize(value)


def plain_numbers(value: Any) -> Any:
    """DynamoDB numbers deserialize as Decimal; the models want int/float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_numbers(v) for v in value]
    return value


def now_iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat()


def history_entry(now: float, state: str, detail: str) -> list[dict[str, str]]:
    """The one-entry list a write appends to the item's `history`."""
    return [{"at": now_iso(now), "state": state, "detail": detail[:MAX_DETAIL]}]


def is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


__all__ = [
    "MAX_DETAIL",
    "REPORT_ATTRIBUTES",
    "attribute_value",
    "attribute_values",
    "history_entry",
    "is_conditional_failure",
    "now_iso",
    "plain_numbers",
    "record_from_item",
]
