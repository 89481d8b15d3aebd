"""How DynamoDB sizes an item and bills a write of it: the rules the capacity pool's bound (decision 125) and the
cost benchmark's write units are computed by. Pure; items in DynamoDB's low-level form (`{"S": "..."}`, ...).

- An item's size is the sum of its attribute names' and values' sizes: a string is its UTF-8 bytes, a number
  1 byte per two significant digits plus 1, a binary its raw bytes, a null or Boolean 1 byte, a list or map 3 bytes
  plus 1 byte and the size of each element (a map element's name counts), a set the sum of its elements.
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
- A write costs 1 write unit per KB of the item, rounded up (UpdateItem: the larger of the item before and after
  the update); in a transaction, 2. A failed condition still costs the units of the item's size.
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html
- One partition serves at most 1,000 write units a second, and one item lives in one partition, so a single item
  takes at most 1,000 write units a second however the table scales.
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

WRITE_UNIT_BYTES = 1024
TRANSACTIONAL_WRITE_FACTOR = 2
PARTITION_WRITE_UNITS_PER_SECOND = 1000
_CONTAINER_OVERHEAD = 3  # a list or map, whatever it holds
_ELEMENT_OVERHEAD = 1  # each element of a list or map


def number_bytes(text: str) -> int:
    """A number's size: 1 byte per two significant digits (leading and trailing zeros trimmed), plus 1."""
    try:
        significant = len(Decimal(text).normalize().as_tuple().digits)
    except InvalidOperation:  # not a number DynamoDB would store: its digits, as written
        significant = sum(character.isdigit() for character in text)
    return math.ceil(max(1, significant) / 2) + 1


def value_bytes(value: dict[str, Any]) -> int:
    """The size of one attribute value in its low-level form, its name not included."""
    kind, inner = next(iter(value.items()))
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        return number_bytes(str(inner))
    if kind == "B":
        return len(inner) if isinstance(inner, bytes | bytearray) else len(str(inner).encode())
    if kind in ("NULL", "BOOL"):
        return 1
    if kind == "SS":
        return sum(len(str(element).encode()) for element in inner)
    if kind == "NS":
        return sum(number_bytes(str(element)) for element in inner)
    if kind == "BS":
        return sum(len(element) for element in inner)
    if kind == "L":
        return _CONTAINER_OVERHEAD + sum(_ELEMENT_OVERHEAD + value_bytes(element) for element in inner)
    if kind == "M":
        return _CONTAINER_OVERHEAD + sum(
            _ELEMENT_OVERHEAD + len(name.encode()) + value_bytes(element) for name, element in inner.items()
        )
    raise ValueError(f"not a DynamoDB attribute value type: {kind!r}")


def attribute_bytes(name: str, value: dict[str, Any]) -> int:
    return len(name.encode()) + value_bytes(value)


def item_bytes(item: dict[str, dict[str, Any]]) -> int:
    """An item's size as DynamoDB counts it: its attributes' names and values."""
    return sum(attribute_bytes(name, value) for name, value in item.items())


def write_units(size_bytes: int, *, transactional: bool = False) -> int:
    """The write units one write of an item of `size_bytes` costs (at least 1 KB's)."""
    units = max(1, math.ceil(size_bytes / WRITE_UNIT_BYTES))
    return units * (TRANSACTIONAL_WRITE_FACTOR if transactional else 1)
