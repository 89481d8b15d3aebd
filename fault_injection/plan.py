"""Which faults fire, for whom and when: `FaultRule`s in a `FaultPlan` (decision 077).

A rule names a kind, a target (a challenge or submission id; None = every call) and when it fires: every
matching call, the first N matching calls, every matching call inside a time window, or the first N inside
the window (seconds after the plan's `epoch`, on whatever clock the caller passes as `now`: the virtual clock in the
matrix, wall time in the local pipeline). Adapters and drivers ask `plan.fire(kind, ids=..., now=...)`;
the first rule that matches and still has budget fires and is counted. Counters live in the process that
fires: a plan passed to worker processes (`FAULT_PLAN_ENV`) counts per process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from fault_injection.kinds import FaultKind

FAULT_PLAN_ENV = "MM_FAULT_PLAN"  # a FaultPlan as JSON, for worker processes of the local pipeline
ANY_TARGET = "*"  # on a command line: every call

ParamValue = str | int | float | bool


class FaultWindow(BaseModel):
    """[start, end) in seconds after the plan's epoch."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: float = Field(ge=0)
    end: float

    @model_validator(mode="after")
    def _ordered(self) -> FaultWindow:
        if self.end <= self.start:
            raise ValueError("window end must be after its start")
        return self


class FaultRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: FaultKind
    target: str | None = None  # challenge or submission id; None: every call
    first_n: int | None = Field(default=None, ge=1)
    every: bool = False
    window: FaultWindow | None = None
    params: dict[str, ParamValue] = Field(default_factory=dict)  # e.g. delay_seconds, commit_delay_seconds

    @model_validator(mode="after")
    def _one_mode(self) -> FaultRule:
        bounded = self.first_n is not None or self.window is not None
        if self.every == bounded:
            raise ValueError("a fault rule needs `every`, or `first_n` and/or `window` (the first N inside it)")
        return self

    def param(self, name: str, default: float) -> float:
        value = self.params.get(name, default)
        return float(value) if not isinstance(value, str) else float(value.strip() or default)

    def describe(self) -> str:
        mode = f":{self.first_n}" if self.first_n is not None else ""
        if self.window is not None:
            mode = f"@{self.window.start:g}-{self.window.end:g}s"
        return f"{self.target or ANY_TARGET}={self.kind.value}{mode}"


@dataclass(frozen=True)
class FaultFiring:
    """One fault that fired: for reports and assertions ("the fault really happened")."""

    kind: FaultKind
    rule_index: int
    ids: tuple[str, ...]
    now: float | None


class FaultPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[FaultRule] = Field(default_factory=list)
    epoch: float = 0.0  # windows are relative to this instant on the caller's clock

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _counts: dict[int, int] = PrivateAttr(default_factory=dict)
    _fired: list[FaultFiring] = PrivateAttr(default_factory=list)

    # ---- asking
    def fire(
        self,
        kind: FaultKind,
        *,
        ids: Iterable[str | None] = (),
        now: float | None = None,
        accept: Callable[[FaultRule], bool] | None = None,
    ) -> FaultRule | None:
        """The rule that fires for this call (and count it), or None. Thread-safe. `accept` narrows the
        match further by the rule's params (e.g. an HTTP method) before anything is counted."""
        present = tuple(str(i) for i in ids if i)
        with self._lock:
            for index, rule in enumerate(self.rules):
                if rule.kind is not kind or (rule.target is not None and rule.target not in present):
                    continue
                if accept is not None and not accept(rule):
                    continue
                if rule.window is not None and (
                    now is None or not (rule.window.start <= now - self.epoch < rule.window.end)
                ):
                    continue
                if rule.first_n is not None and self._counts.get(index, 0) >= rule.first_n:
                    continue
                self._counts[index] = self._counts.get(index, 0) + 1
                self._fired.append(FaultFiring(kind, index, present, now))
                return rule
        return None

    def has(self, *kinds: FaultKind) -> bool:
        """Whether any rule names one of these kinds (lets a driver skip work it would never need)."""
        return any(rule.kind in kinds for rule in self.rules)

    def fired(self, kind: FaultKind | None = None) -> list[FaultFiring]:
        with self._lock:
            return [f for f in self._fired if kind is None or f.kind is kind]

    def fire_count(self, kind: FaultKind | None = None) -> int:
        return len(self.fired(kind))

    # ---- building
    @classmethod
    def of(cls, *rules: FaultRule, epoch: float = 0.0) -> FaultPlan:
        return cls(rules=list(rules), epoch=epoch)

    def with_rule(self, rule: FaultRule) -> FaultPlan:
        return FaultPlan(rules=[*self.rules, rule], epoch=self.epoch)

    # ---- crossing process boundaries
    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> FaultPlan:
        return cls.model_validate_json(text)

    def to_env(self) -> dict[str, str]:
        return {FAULT_PLAN_ENV: self.to_json()}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FaultPlan | None:
        text = (os.environ if environ is None else environ).get(FAULT_PLAN_ENV, "").strip()
        return cls.from_json(text) if text else None


def parse_cli(text: str) -> FaultRule:
    """`ID=KIND[:COUNT]` (ID `*` = every call; no COUNT = every matching call). ValueError says why."""
    target, sep, rest = text.partition("=")
    kind_text, _, count_text = rest.partition(":")
    if not sep or not target.strip() or not kind_text.strip():
        raise ValueError(f"fault {text!r}: expected ID=KIND[:COUNT]")
    kind = FaultKind.parse(kind_text)
    target_id = None if target.strip() == ANY_TARGET else target.strip()
    if not count_text:
        return FaultRule(kind=kind, target=target_id, every=True)
    if not count_text.strip().isdigit() or int(count_text) < 1:
        raise ValueError(f"fault {text!r}: COUNT must be a positive integer")
    return FaultRule(kind=kind, target=target_id, first_n=int(count_text))


__all__ = ["ANY_TARGET", "FAULT_PLAN_ENV", "FaultFiring", "FaultPlan", "FaultRule", "FaultWindow", "parse_cli"]
