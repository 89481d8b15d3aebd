"""DynamoDB attribute values to and from Python values, without importing boto3 (decision 112).

`from boto3.dynamodb.types import ...` runs `boto3/__init__`, which loads `s3transfer`, `multiprocessing` and
`concurrent.futures`: about a tenth of a cold start for two small classes. The deserializer is Powertools' own
(`aws_lambda_powertools.shared.dynamodb_deserializer`, "based on boto3's"; it returns binary values as `bytes`
where boto3 wraps them in `Binary`, and no item of ours holds binary). Powertools ships no serializer, so
`TypeSerializer` below follows boto3 1.44's `boto3.dynamodb.types.TypeSerializer` rule for rule (Apache-2.0):
numbers as `int` or `Decimal` in DynamoDB's 38-digit context (a float is refused), sets of one kind, mappings as
`M`, lists and tuples as `L`. `tests/unit/shared/test_dynamodb_types.py` holds it to boto3's answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.shared.dynamodb_deserializer import DYNAMODB_CONTEXT, TypeDeserializer


class TypeSerializer:
    """Python values as DynamoDB attribute values (`{"S": "x"}`, `{"N": "1"}`, ...), as boto3 serializes them."""

    def serialize(self, value: Any) -> dict[str, Any]:
        if value is None:
            return {"NULL": True}
        if isinstance(value, bool):
            return {"BOOL": value}
        if _is_number(value):
            return {"N": _number(value)}
        if isinstance(value, str):
            return {"S": value}
        if isinstance(value, bytes | bytearray):
            return {"B": value}
        if isinstance(value, Set) and (attribute := _set_value(value)) is not None:
            return attribute
        if isinstance(value, Mapping):
            return {"M": {key: self.serialize(item) for key, item in value.items()}}
        if isinstance(value, list | tuple):
            return {"L": [self.serialize(item) for item in value]}
        raise TypeError(f'Unsupported type "{type(value)}" for value "{value}"')


def _set_value(value: Set[Any]) -> dict[str, Any] | None:
    """A set of one kind; boto3 tries numbers, then strings, then binary, so an empty set is a number set."""
    if all(_is_number(item) for item in value):
        return {"NS": [_number(item) for item in value]}
    if all(isinstance(item, str) for item in value):
        return {"SS": list(value)}
    if all(isinstance(item, bytes | bytearray) for item in value):
        return {"BS": list(value)}
    return None


def _is_number(value: Any) -> bool:
    if isinstance(value, float):
        raise TypeError("Float types are not supported. Use Decimal types instead.")
    return isinstance(value, int | Decimal)


def _number(value: int | Decimal) -> str:
    number = str(DYNAMODB_CONTEXT.create_decimal(value))
    if number in ("Infinity", "NaN"):
        raise TypeError("Infinity and NaN not supported")
    return number


__all__ = ["TypeDeserializer", "TypeSerializer"]
