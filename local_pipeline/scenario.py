"""Input records and the scenario around them: scorer behaviours and ECS faults by challenge or submission.

A messages file holds one Kafka record value per line, byte for byte as a producer wrote it (a line that
is not JSON is still a record). Blank lines are not records. v5 and v6 records may be mixed: each is fed on
the topic it names (a bare v6 payload on v6's), and the topic decides the platform (decision 090). Each
platform has a built-in example set with a scenario file (`example-set.scenario.json`,
`example-set-v6.scenario.json`) naming which submissions (or runs, `<submissionId>#<PHASE>`) fail, crash,
run long or cannot be launched, and the final state every line (and each of its runs) must reach.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fault_injection import ANY_TARGET, FaultKind, FaultRule, FaultWindow
from infrastructure.config import EnvironmentConfig
from local_pipeline.fargate import FAIL_TO_START
from mm_contracts.models.phase import V6_SUBMISSION_TOPIC, Platform

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE_SET = EXAMPLES_DIR / "messages" / "example-set.jsonl"
EXAMPLE_SCENARIO = EXAMPLES_DIR / "messages" / "example-set.scenario.json"
EXAMPLE_SET_V6 = EXAMPLES_DIR / "messages" / "example-set-v6.jsonl"
EXAMPLE_SCENARIO_V6 = EXAMPLES_DIR / "messages" / "example-set-v6.scenario.json"
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
    """One `--fault`: a `fault_injection.FaultRule` with the window relative to the start of the feed."""

    target_id: str | None  # challenge or submission id; None (`*` on the command line): every call
    kind: str  # a FaultKind value or one of its aliases (capacity, throttle, lose-stopped-event)
    count: int | None = None  # the first COUNT matching calls; None: every call (or the window)
    window: tuple[float, float] | None = None  # [start, end) seconds after the feed starts
    params: dict[str, str | int | float | bool] = field(default_factory=dict)

    def describe(self) -> str:
        text = f"{self.target_id or ANY_TARGET}={self.kind}" + (f":{self.count}" if self.count is not None else "")
        if self.window is not None:
            text += f"@{self.window[0]:g}-{self.window[1]:g}"
        return text + "".join(f",{k}={v}" for k, v in self.params.items())

    def to_rule(self) -> FaultRule:
        kind = FaultKind.parse(self.kind)
        if self.window is not None:
            return FaultRule(
                kind=kind,
                target=self.target_id,
                window=FaultWindow(start=self.window[0], end=self.window[1]),
                params=self.params,
            )
        if self.count is not None:
            return FaultRule(kind=kind, target=self.target_id, first_n=self.count, params=self.params)
        return FaultRule(kind=kind, target=self.target_id, every=True, params=self.params)


FAULT_SYNTAX = "ID=KIND[:COUNT][@START-END][,NAME=VALUE...]"


@dataclass(frozen=True)
class Expectation:
    line: int
    state: str
    reason: str | None = None
    note: str = ""
    runs: dict[str, str] = field(default_factory=dict)  # phase -> the final state of that run


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


def fault_kind_names() -> list[str]:
    """Every kind `--fault` accepts: the FaultKind values, then the older aliases."""
    from fault_injection import FAULT_KIND_ALIASES

    return [*(k.value for k in FaultKind), *FAULT_KIND_ALIASES]


def _param_value(text: str) -> str | int | float | bool:
    if text in ("true", "false"):
        return text == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return text


def parse_fault(text: str) -> FaultSpec:
    """`ID=KIND[:COUNT][@START-END][,NAME=VALUE...]`: ID a challenge or submission id (`*`: every call);
    COUNT the first N matching calls (default: every call); START-END a window in seconds after the feed
    starts; NAME=VALUE rule parameters (delay_seconds, commit_delay_seconds, after_seconds, ...)."""
    head, *extras = text.split(",")
    target, sep, rest = head.partition("=")
    rest, _, window_text = rest.partition("@")
    kind_text, _, count_text = rest.partition(":")
    problem = f"--fault {text!r}: expected {FAULT_SYNTAX} with KIND one of {', '.join(fault_kind_names())}"
    if not sep or not target.strip() or not kind_text.strip():
        raise ScenarioError(problem)
    try:
        kind = FaultKind.parse(kind_text)
    except ValueError:
        raise ScenarioError(problem) from None
    count: int | None = None
    if count_text:
        if not count_text.isdigit() or int(count_text) < 1:
            raise ScenarioError(f"--fault {text!r}: COUNT must be a positive integer")
        count = int(count_text)
    window: tuple[float, float] | None = None
    if window_text:
        start_text, _, end_text = window_text.rstrip("s").partition("-")
        try:
            window = (float(start_text), float(end_text))
            FaultWindow(start=window[0], end=window[1])
        except ValueError:
            raise ScenarioError(f"--fault {text!r}: the window is START-END seconds, START >= 0, END > START") from None
        if count is not None:
            raise ScenarioError(f"--fault {text!r}: give COUNT or a window, not both")
    params: dict[str, str | int | float | bool] = {}
    for extra in extras:
        name, eq, value = extra.partition("=")
        if not eq or not name.strip():
            raise ScenarioError(f"--fault {text!r}: parameters are NAME=VALUE")
        params[name.strip()] = _param_value(value.strip())
    target_id = None if target.strip() == ANY_TARGET else target.strip()
    return FaultSpec(target_id, kind.value, count, window, params)


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
        Expectation(
            line=int(e["line"]),
            state=str(e["state"]),
            reason=e.get("reason"),
            note=str(e.get("note", "")),
            runs={str(phase): str(state) for phase, state in (e.get("runs") or {}).items()},
        )
        for e in data.get("expected") or []
    ]
    return Scenario(scorers=scorers, faults=faults, expected=expected)


def example_set(platform: Platform | str = Platform.V5) -> tuple[list[InputRecord], Scenario]:
    """The built-in example set of a platform and its scenario."""
    if Platform(platform) is Platform.V6:
        return load_messages(EXAMPLE_SET_V6), load_scenario(EXAMPLE_SCENARIO_V6)
    return load_messages(EXAMPLE_SET), load_scenario(EXAMPLE_SCENARIO)


def example_set_for(config: EnvironmentConfig) -> tuple[list[InputRecord], Scenario]:
    """The example set of the environment's first platform (an environment in migration: v5's, as before)."""
    return example_set(config.platforms[0])


_NANOID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def generate(
    config: EnvironmentConfig, count: int, *, seed: int = 7, challenge_id: str | None = None
) -> list[InputRecord]:
    """`count` valid submissions (bus envelopes) spread round-robin over the active challenges, or all of them to
    one (`challenge_id`: a flood on one challenge, to watch its cap and the others' share)."""
    active = [c for c in config.challenges if c.active]
    if challenge_id is not None:
        active = [c for c in active if c.challenge_id == challenge_id]
        if not active:
            known = ", ".join(c.challenge_id for c in config.challenges if c.active)
            raise ScenarioError(
                f"--challenge {challenge_id}: not an active challenge of environment {config.environment} ({known})"
            )
    if active and all(c.served_by is Platform.V6 for c in active):
        return _generate_v6(config, active, count, seed=seed)
    active = [c for c in active if c.served_by is Platform.V5]
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


def _generate_v6(config: EnvironmentConfig, active: list[Any], count: int, *, seed: int) -> list[InputRecord]:
    """`count` v6 `marathonmatch.submission.received` envelopes (nanoid ids), round-robin over `active`."""
    rng = random.Random(seed)
    host = next((h.lstrip(".") for h in config.allowed_url_hosts if not h.startswith(".")), None)
    host = host or f"bucket{config.allowed_url_hosts[0]}"
    now = datetime.now(tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    records = []
    for index in range(count):
        challenge = active[index % len(active)]
        submission_id = "".join(rng.choice(_NANOID_ALPHABET) for _ in range(14))
        payload = {
            "submissionId": submission_id,
            "challengeId": challenge.challenge_id,
            "submissionUrl": f"https://{host}/mm/{submission_id}.zip",
            "memberHandle": f"member{index}",
            "memberId": str(40_000_000 + rng.randrange(1_000_000)),
            "submittedDate": now,
        }
        envelope = {
            "topic": V6_SUBMISSION_TOPIC,
            "originator": "review-api-v6",
            "timestamp": now,
            "mime-type": "application/json",
            "payload": payload,
        }
        records.append(InputRecord(position=index, value=json.dumps(envelope).encode()))
    return records
