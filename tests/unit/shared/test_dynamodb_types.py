"""`mm_adapters.dynamodb_types` gives boto3's answers without importing boto3 (decision 112).

The functions read and write DynamoDB attribute values through it; boto3's own `TypeSerializer` and
`TypeDeserializer` (a test dependency here) are the reference, value for value and refusal for refusal.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer as Boto3Deserializer
from boto3.dynamodb.types import TypeSerializer as Boto3Serializer

from mm_adapters.dynamodb_types import TypeDeserializer, TypeSerializer

VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -7,
    12_345_678_901_234_567_890,
    Decimal("3.25"),
    Decimal("-0.000001"),
    Decimal("1E+5"),
    "",
    "run#PROVISIONAL",
    b"\x00\x01",
    bytearray(b"ab"),
    {"a", "b"},
    {1, Decimal("2.5")},
    {b"x", b"y"},
    set(),
    [],
    (1, "a"),
    ["x", 1, None, {"nested": [True, {"deeper": Decimal("1.5")}]}],
    {"at": "2026-12-02T06:00:00+00:00", "state": "LAUNCHED", "attempt": 2, "tags": {"t1"}},
]
REFUSED: list[Any] = [1.5, [1.5], {"x": 0.1}, Decimal("Infinity"), Decimal("NaN"), object(), {1, "a"}]
DESERIALIZABLE = [value for value in VALUES if not isinstance(value, bytes | bytearray | tuple)]


def ids(values: list[Any]) -> list[str]:
    """Stable test ids (a set's or an object's repr differs between processes, and xdist compares them)."""
    return [f"{type(value).__name__}-{index}" for index, value in enumerate(values)]


@pytest.mark.parametrize("value", VALUES, ids=ids(VALUES))
def test_a_value_serializes_as_boto3_serializes_it(value: Any) -> None:
    assert TypeSerializer().serialize(value) == Boto3Serializer().serialize(value)


@pytest.mark.parametrize("value", REFUSED, ids=ids(REFUSED))
def test_a_value_boto3_refuses_is_refused_with_the_same_error(value: Any) -> None:
    with pytest.raises(TypeError) as boto3_error:
        Boto3Serializer().serialize(value)
    with pytest.raises(TypeError) as ours:
        TypeSerializer().serialize(value)
    assert str(ours.value) == str(boto3_error.value)


@pytest.mark.parametrize("value", DESERIALIZABLE, ids=ids(DESERIALIZABLE))
def test_an_attribute_value_deserializes_as_boto3_deserializes_it(value: Any) -> None:
    # (binary is the one difference: Powertools gives bytes where boto3 wraps them in Binary; no item holds any)
    attribute: Any = Boto3Serializer().serialize(value)
    assert TypeDeserializer().deserialize(attribute) == Boto3Deserializer().deserialize(attribute)
