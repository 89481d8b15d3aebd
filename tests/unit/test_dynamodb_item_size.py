"""DynamoDB's item size and write-unit rules (mm_contracts/dynamodb_item_size.py), against the examples of its
documentation (CapacityUnitCalculations, read-write-operations): what decision 125's pool bound is computed by."""

from __future__ import annotations

import pytest

from mm_contracts.dynamodb_item_size import (
    PARTITION_WRITE_UNITS_PER_SECOND,
    item_bytes,
    number_bytes,
    value_bytes,
    write_units,
)
from mm_contracts.models.capacity import environment_pool_write_units_per_second, largest_cap_at_pace


def test_a_string_is_its_utf8_bytes_and_the_name_counts() -> None:
    assert item_bytes({"pk": {"S": "POOL"}}) == 2 + 4
    assert value_bytes({"S": "é"}) == 2  # two UTF-8 bytes, one character


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 2),  # one significant digit
        ("7", 2),
        ("16384", 4),  # five digits: 3 bytes + 1
        ("1000", 2),  # trailing zeros trimmed: one significant digit
        ("0.0050", 2),  # leading and trailing zeros trimmed: one significant digit, "5"
        ("123.45", 4),
        ("-123456", 4),
        ("1E+5", 2),
    ],
)
def test_a_number_is_one_byte_per_two_significant_digits_plus_one(text: str, expected: int) -> None:
    assert number_bytes(text) == expected


def test_lists_and_maps_carry_three_bytes_and_one_per_element() -> None:
    assert value_bytes({"L": []}) == 3
    assert value_bytes({"L": [{"S": "ab"}, {"N": "1"}]}) == 3 + (1 + 2) + (1 + 2)
    assert value_bytes({"M": {"at": {"S": "x"}}}) == 3 + 1 + 2 + 1
    assert value_bytes({"BOOL": True}) == value_bytes({"NULL": True}) == 1
    assert value_bytes({"SS": ["a", "bc"]}) == 3


def test_a_holder_attribute_of_a_pool_item_is_55_bytes_at_most() -> None:
    # `h#` + a v5 run id (UUID `#PROVISIONAL`) = 50 bytes of name, 16,384 CPU units = 4 bytes
    name = "h#5a0c0f57-8b70-4a2b-9f3e-1c2d3e4f5a6b#PROVISIONAL"
    assert item_bytes({name: {"N": "16384"}}) == 54


def test_a_write_costs_a_unit_per_started_kb_and_twice_in_a_transaction() -> None:
    assert write_units(0) == write_units(1) == write_units(1024) == 1
    assert write_units(1025) == 2
    assert write_units(5_656, transactional=True) == 12
    with pytest.raises(ValueError, match="not a DynamoDB attribute value type"):
        value_bytes({"X": "?"})


def test_the_largest_cap_at_each_pace_is_the_last_one_whose_full_pool_item_fits_one_items_write_units() -> None:
    # decision 125: `largest_cap_at_pace` inverts `environment_pool_write_units_per_second`; at every pace the
    # config allows, its answer fits and one more holder does not
    for pace in range(1, 101):
        largest = largest_cap_at_pace(pace)
        assert environment_pool_write_units_per_second(largest, pace) <= PARTITION_WRITE_UNITS_PER_SECOND, pace
        assert environment_pool_write_units_per_second(largest + 1, pace) > PARTITION_WRITE_UNITS_PER_SECOND, pace
    assert [largest_cap_at_pace(pace) for pace in (1, 10, 20, 100)] == [4649, 460, 218, 32]
