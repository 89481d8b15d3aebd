"""Input records and the scenario around them: scorer behaviours and ECS faults by challenge or submission.

A messages file holds one Kafka record value per line, byte for byte as a producer wrote it (a line that
is not JSON is still a record). Blank lines are not records. The built-in example set comes with a
scenario file (`example-set.scenario.json`) naming which submissions fail, crash, run long or cannot be
launched, and the final state every line must reach.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infrastructure.config import EnvironmentConfig
from local_pipeline.fargate import FAIL_TO_START, FAULT_KINDS

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE_SET = EXAMPLES_DIR / "messages" / "example-set.jsonl"
EXAMPLE_SCENARIO = EXAMPLES_DIR / "messages" / "example-set.scenario.json"
SCORER_SCRIPT = EXAMPLES_DIR / "scorer" / "scorer.py"
SCORER_BEHAVIOURS = ("succeed", "fail", "error", "crash", "run-long", FAIL_TO_START)


class ScenarioError(ValueError):
    """A messages file, scenario file or --scorer/--fault argument is unusable (the message says why)."""


@dataclass(frozen=True)
class InputRecord:
    position: int  # 0-based line (or generated index)
    value: bytes


@dataclass(frozen=True)
class FaultSpec:
    target_id: str  # challenge id or submission id
    kind: str  # capacity | throttle | lose-stopped-event
    count: int | None = None  # None: every RunTask call

    def describe(self) -> str:
        return f"{self.target_id}={self.kind}" + (f":{self.count}" if self.count is not None else "")


@dataclass(frozen=True)
class Expectation:
    line: int
    state: str
    reason: str | None = None
    note: str = ""


@dataclass
class Scenario:
    scorers: dict[str, str] = field(default_factory=dict)  # id -> behaviour
    faults: list[FaultSpec] = field(default_factory=list)
    expected: list[Expectation] = field(default_factory=list)

    def merged(self, other: Scenario) -> Scenario:
        return Scenario(
            {**self.scorers, **other.scorers}, [*self.faults, *other.faults], other.expected or self.expected
        )


def load_messages(path: Path) -> list[InputRecord]:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ScenarioError(f"--messages {path}: {error.strerror or error}") from None
    lines = raw.split(b"\n")
    return [
        InputRecord(position=index, value=line.rstrip(b"\r"))
        for index, line in enumerate(lines)
        if line.strip()  # a blank line is not a record (a trailing newline ends the file)
    ]


def parse_scorer(text: str) -> tuple[str, str]:
    target, sep, behaviour = text.partition("=")
    if not sep or not target.strip() or behaviour.strip() not in SCORER_BEHAVIOURS:
        raise ScenarioError(
            f"--scorer {text!r}: expected ID=BEHAVIOUR with BEHAVIOUR one of {', '.join(SCORER_BEHAVIOURS)}"
        )
    return target.strip(), behaviour.strip()


def parse_fault(text: str) -> FaultSpec:
    target, sep, rest = text.partition("=")
    kind, _, count_text = rest.partition(":")
    if not sep or not target.strip() or kind.strip() not in FAULT_KINDS:
        raise ScenarioError(f"--fault {text!r}: expected ID=KIND[:COUNT] with KIND one of {', '.join(FAULT_KINDS)}")
    count: int | None = None
    if count_text:
        if not count_text.isdigit() or int(count_text) < 1:
            raise ScenarioError(f"--fault {text!r}: COUNT must be a positive integer")
        count = int(count_text)
    return FaultSpec(target.strip(), kind.strip(), count)


def load_scenario(path: Path) -> Scenario:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ScenarioError(f"scenario {path}: {error}") from None
    faults = []
    for target, spec in (data.get("faults") or {}).items():
        faults.append(parse_fault(f"{target}={spec}"))
    scorers = dict(parse_scorer(f"{target}={behaviour}") for target, behaviour in (data.get("scorers") or {}).items())
    expected = [
        Expectation(line=int(e["line"]), state=str(e["state"]), reason=e.get("reason"), note=str(e.get("note", "")))
        for e in data.get("expected") or []
    ]
    return Scenario(scorers=scorers, faults=faults, expected=expected)


def example_set() -> tuple[list[InputRecord], Scenario]:
    return load_messages(EXAMPLE_SET), load_scenario(EXAMPLE_SCENARIO)


def generate(config: EnvironmentConfig, count: int, *, seed: int = 7) -> list[InputRecord]:
    """`count` valid submissions (bus envelopes) spread round-robin over the active challenges."""
    active = [c for c in config.challenges if c.active]
    if not active:
        raise ScenarioError(f"--generate: environment {config.environment} has no active challenge")
    rng = random.Random(seed)
    host = next((h.lstrip(".") for h in config.allowed_url_hosts if not h.startswith(".")), None)
    host = host or f"bucket{config.allowed_url_hosts[0]}"
    now = datetime.now(tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    records = []
    for index in range(count):
        challenge = active[index % len(active)]
        submission_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        payload = {
            "resource": "submission",
            "id": submission_id,
            "type": "Contest Submission",
            "url": f"https://{host}/mm/{submission_id}.zip",
            "memberId": 40_000_000 + rng.randrange(1_000_000),
            "challengeId": challenge.challenge_id,
            "created": now,
            "updated": now,
            "createdBy": "generated",
            "updatedBy": "generated",
            "submissionPhaseId": 764_567,
            "fileType": "zip",
            "submittedDate": now,
        }
        envelope = {
            "topic": config.kafka.topic,
            "originator": "submission-api",
            "timestamp": now,
            "mime-type": "application/json",
            "payload": payload,
        }
        records.append(InputRecord(position=index, value=json.dumps(envelope).encode()))
    return records
