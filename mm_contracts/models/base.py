"""Base model: camelCase on the wire (Topcoder's convention), snake_case in Python."""

from __future__ import annotations

import re
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

# The canonical form of a UUID: lower-case hex, hyphenated 8-4-4-4-12 (what `str(uuid.UUID(...))` writes).
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def canonical_uuid_form(value: str) -> str:
    """`str(UUID(value))`, without parsing a value already in that form (the common case, on every message)."""
    return value if CANONICAL_UUID.fullmatch(value) else str(UUID(value))


def canonical_uuid(value: str) -> str | None:
    """`value` lower-cased when it is a UUID in the canonical 36-character hyphenated form (any case), else None.

    Exactly what `str(UUID(value)) == value.lower()` accepts for a 36-character value (UUID() alone also takes
    braces, "urn:uuid:" and missing hyphens), as one regex match. Here, beside the pattern, so that a function
    that checks an id does not build the router's inbound Kafka models (`models.bus`) to do it (decision 112).
    """
    if not isinstance(value, str) or len(value) != 36:
        return None
    lowered = value.lower()
    return lowered if CANONICAL_UUID.fullmatch(lowered) else None


# A UUID in its canonical lower-case, hyphenated form; anything `uuid.UUID` cannot parse is rejected.
CanonicalUuid = Annotated[str, AfterValidator(canonical_uuid_form)]


class ContractModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="forbid",
        str_strip_whitespace=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """JSON-ready dict with wire (camelCase) names, None fields dropped."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def to_json(self) -> str:
        # `model_dump_json(by_alias=True, exclude_none=True)` without its keyword plumbing (about 0.6 µs a call):
        # the router writes one of these per Kafka record. Every other option keeps pydantic's default.
        return self.__pydantic_serializer__.to_json(self, by_alias=True, exclude_none=True).decode()
