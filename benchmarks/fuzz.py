"""Long fuzz run: the strategies of tests/fuzz with a fixed seed and >= 10,000 inputs per function.

Prints, per function: inputs tried (and the records / deliveries / events in them), escaped exceptions by
type with the smallest example seen, records not in exactly one state, inputs acted on that should not have
been, and any other property broken. Nothing here asserts: the short run in tests/fuzz does (decision 078).
Examples are printed with the canary token masked and long values cut; a real token never enters the fuzz.

Run: `.venv/bin/python -m benchmarks.fuzz [--examples N] [--only router|processor|completion|router-v6|processor-v6|
completion-v6]`
(also from `benchmarks.run_all`). 10,000 inputs per function take 15 to 25 minutes on a 2-core machine, most of
it the moto-backed completion checker (about ten DynamoDB calls per input).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.fuzz.ecs_inputs import stopped_event
from tests.fuzz.findings import Finding, Property
from tests.fuzz.moto_tables import isolated_aws
from tests.fuzz.sqs_inputs import routed_body
from tests.fuzz.strategies import CANARY_TOKEN, SEEDED_SUBMISSION, SEEDED_TASK_ARN
from tests.fuzz.targets import TARGETS

DEFAULT_EXAMPLES = 10_000
_EXAMPLE_CHARS = 400


@dataclass
class Tally:
    name: str
    unit: str
    inputs: int = 0
    units: int = 0
    inputs_with_findings: int = 0
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    smallest: dict[tuple[str, str], str] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, value: Any, units: int, findings: list[Finding], render: Callable[[Any], str]) -> None:
        self.inputs += 1
        self.units += units
        if findings:
            self.inputs_with_findings += 1
        text: str | None = None
        for finding in findings:
            key = (finding.family, finding.kind)
            self.counts[key] += 1
            text = text or render(value)
            if key not in self.smallest or len(text) < len(self.smallest[key]):
                self.smallest[key] = text

    def family_total(self, family: str) -> int:
        return sum(count for (fam, _), count in self.counts.items() if fam == family)

    def print(self) -> None:
        print(f"\n--- {self.name}: {self.inputs} inputs ({self.units} {self.unit}) in {self.seconds:.1f}s")
        print(f"    inputs with a finding: {self.inputs_with_findings}")
        for family in Property.ALL:
            print(f"    {family}: {self.family_total(family)}")
            for (fam, kind), count in sorted(self.counts.items(), key=lambda item: -item[1]):
                if fam != family:
                    continue
                print(f"      {count:6d}  {kind}")
                print(f"              smallest example: {self.smallest[(fam, kind)]}")


def _mask(text: str) -> str:
    text = text.replace(CANARY_TOKEN, "***canary-token***")
    return text if len(text) <= _EXAMPLE_CHARS else text[: _EXAMPLE_CHARS - 3] + "..."


def _json(value: Any) -> str:
    return _mask(json.dumps(value, default=repr, allow_nan=True))  # ensure_ascii: surrogates stay escaped


def render_msk_event(event: dict[str, Any]) -> str:
    """The records with their values decoded (a base64 blob says nothing to a reader)."""
    records = []
    for key, group in event["records"].items():
        for item in group:
            shown = {k: v for k, v in item.items() if k not in ("timestamp", "timestampType", "topic")}
            value = item.get("value")
            if isinstance(value, str):
                try:
                    shown["value"] = base64.b64decode(value, validate=True).decode("utf-8", "backslashreplace")[:200]
                except (binascii.Error, ValueError):
                    shown["value"] = f"<not base64> {value[:60]!r}"
            records.append({"group": key, **shown})
    return _json(records)


def _changed_fields(body: str) -> Any:
    """A body as the fields that differ from the valid RoutedSubmission it was mutated from."""
    try:
        obj = json.loads(body)
    except ValueError:
        return {"<not JSON>": body[:120]}
    if not isinstance(obj, dict):
        return {"<JSON, not an object>": obj}
    base = routed_body(str(obj.get("submissionId")))
    changed = {k: v for k, v in obj.items() if k not in base or base[k] != v}
    changed.update({k: "<deleted>" for k in base if k not in obj})
    return changed or "<the valid body>"


def render_deliveries(deliveries: list[tuple[str, int]]) -> str:
    return _json([{"changed": _changed_fields(body), "receiveCount": count} for body, count in deliveries])


_GENUINE_CONTAINERS = [{"name": "scorer", "exitCode": code} for code in (0, 1, 137, None)]
_VOLATILE = frozenset({"id", "time", "createdAt", "stoppedAt", "stoppingAt", "updatedAt"})


def _env(detail: Any) -> dict[str, Any] | None:
    try:
        return {
            pair["name"]: pair["value"]
            for override in detail["overrides"]["containerOverrides"]
            for pair in override["environment"]
        }
    except (KeyError, TypeError):
        return None


def _diff(genuine: dict[str, Any], event: Any) -> dict[str, Any]:
    changed: dict[str, Any] = {}
    for key in sorted(set(genuine) | set(event)):
        if key in _VOLATILE or key in ("detail", "resources") or genuine.get(key) == event.get(key):
            continue
        changed[key] = event.get(key, "<deleted>")
    return changed


def render_events(events: list[dict[str, Any]]) -> str:
    """Each event as what differs from the genuine STOPPED event of the launched task (tests/builders.py)."""
    shown: list[Any] = []
    for event in events:
        genuine = stopped_event(SEEDED_SUBMISSION, SEEDED_TASK_ARN, exit_code=1)
        changed = _diff(genuine, event)
        detail = event.get("detail", "<deleted>")
        if not isinstance(detail, dict):
            changed["detail"] = detail
        else:
            inner = _diff(genuine["detail"], detail)
            inner.pop("overrides", None)
            if "containers" in inner and isinstance(detail.get("containers"), list):
                brief = [
                    {k: c.get(k) for k in ("name", "exitCode")} if isinstance(c, dict) else c
                    for c in detail["containers"]
                ]
                if len(brief) == 1 and brief[0] in _GENUINE_CONTAINERS:
                    del inner["containers"]  # the genuine container with one of the generated exit codes
                else:
                    inner["containers"] = brief
            env, genuine_env = _env(detail), _env(genuine["detail"]) or {}
            if env is None:
                inner["overrides"] = detail.get("overrides", "<deleted>")
            else:
                env_changes = {k: v for k, v in env.items() if genuine_env.get(k) != v}
                env_changes.update({k: "<deleted>" for k in genuine_env if k not in env})
                if env_changes:
                    inner["env"] = env_changes
            changed.update({f"detail.{k}": v for k, v in inner.items()})
        shown.append(changed or "<the genuine event>")
    return _json(shown)


def fuzz(
    tally: Tally,
    strategy: st.SearchStrategy[Any],
    check: Callable[[Any], list[Finding]],
    units: Callable[[Any], int],
    render: Callable[[Any], str],
    examples: int,
) -> Tally:
    # The settings stay spelled out (not `fixed_seed`): hypothesis derives the fixed seed from this source, so the
    # long run keeps drawing the inputs it always drew.
    @settings(
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=examples,
        phases=[Phase.generate],  # nothing fails here, so nothing to shrink
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def one(value: Any) -> None:
        tally.add(value, units(value), check(value), render)

    began = time.monotonic()
    one()
    tally.seconds = time.monotonic() - began
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES, help="inputs per function")
    parser.add_argument(
        "--only",
        choices=list(TARGETS),
        action="append",
    )
    args = parser.parse_args(argv)
    only = set(args.only or TARGETS)
    warnings.filterwarnings("ignore")  # Powertools' "No application metrics" on every empty flush
    print(f"fuzz: fixed seed (derandomize), {args.examples} inputs per function")
    tallies: list[Tally] = []
    renderers: dict[str, Callable[[Any], str]] = {
        "router": render_msk_event,
        "router-v6": render_msk_event,
        "processor-v6": _json,
        "completion-v6": _json,
        "processor": render_deliveries,
        "completion": render_events,
    }
    with isolated_aws() as table:  # the order of the targets sharing the account is the one the figures came from
        for name in [name for name in renderers if name in only]:
            target = TARGETS[name]
            checker = target.build(table if target.needs_aws else None)
            tally = fuzz(
                Tally(target.title, target.unit),
                target.strategy,
                checker.check,
                checker.units,
                renderers[name],
                args.examples,
            )
            tallies.append(tally)
            tally.print()
    print("\n--- fuzz summary")
    print(f"    {'function':<20} {'inputs':>7} {'units':>7} {'escaped':>8} {'states':>7} {'acted':>6} {'other':>6}")
    for tally in tallies:
        print(
            f"    {tally.name:<20} {tally.inputs:>7} {tally.units:>7} {tally.family_total(Property.ESCAPED):>8} "
            f"{tally.family_total(Property.STATES):>7} {tally.family_total(Property.ACTED):>6} "
            f"{tally.family_total(Property.OTHER):>6}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
