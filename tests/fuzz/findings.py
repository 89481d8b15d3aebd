"""What a fuzz checker reports: findings in four property families, never raised (decision 078).

A checker returns the list; the short run in tests/fuzz asserts each family is empty, the long run
(`benchmarks/fuzz.py`) counts them. Text shown in a finding has the canary token masked and is cut short.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.fuzz.strategies import CANARY_TOKEN


class Property:
    """The families the findings fall in (what the benchmark prints, what each test asserts separately)."""

    ESCAPED = "escaped exception"
    STATES = "not in exactly one state"
    ACTED = "acted on, should not have been"
    OTHER = "other property"

    ALL = (ESCAPED, STATES, ACTED, OTHER)


@dataclass(frozen=True)
class Finding:
    """One property violation: `kind` is the stable category counted by the benchmark, `detail` a safe hint."""

    family: str
    kind: str
    detail: str = ""

    def __str__(self) -> str:
        return f"[{self.family}] {self.kind}" + (f": {self.detail}" if self.detail else "")


def escaped(error: BaseException) -> Finding:
    return Finding(Property.ESCAPED, type(error).__name__, safe(str(error)))


def of_family(findings: list[Finding], family: str) -> list[str]:
    return [str(finding) for finding in findings if finding.family == family]


def safe(text: str, limit: int = 160) -> str:
    text = text.replace(CANARY_TOKEN, "***canary***")
    text = text.encode("utf-8", "backslashreplace").decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextlib.contextmanager
def quiet(logger: Any) -> Iterator[None]:
    """The function's logger at CRITICAL only while one input runs (10,000 inputs would print ~50 MB)."""
    previous = logger.log_level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)
