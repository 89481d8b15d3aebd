"""Platforms, scoring phases and the run identity (submission, phase): the vocabulary of decision 084.

Topcoder's seed design (v5) scores a submission once; its live platform (v6) scores it once per phase
(EXAMPLE and PROVISIONAL when it arrives, SYSTEM after the match), and reports each phase as its own review
summation. A run is therefore identified by (submission, phase) on both platforms: a v5 run is the
submission's single configured phase.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from pydantic import AliasChoices, Field

from mm_contracts.models.base import CANONICAL_UUID, ContractModel


class Platform(StrEnum):
    """Which Topcoder contracts a challenge speaks: its submission event and where its outcomes go."""

    V5 = "v5"  # submission.notification.create; Submission API v5 reviews (the seed design)
    V6 = "v6"  # marathonmatch.submission.received; review-api-v6 review summations (the live platform)


# review-api-v6 publishes this after a submission's virus scan came back clean.
V6_SUBMISSION_TOPIC = "marathonmatch.submission.received"
# A v6 submission id: nanoid(14) over `A-Za-z0-9_-` (review-api-v6 `prisma/migrate.ts`; column VarChar(14)).
V6_SUBMISSION_ID = re.compile(r"^[A-Za-z0-9_-]{14}$")


def submission_id_fits(submission_id: str, platform: Platform) -> bool:
    """Whether an id has the form its platform gives submissions: a canonical UUID (v5) or a nanoid (v6)."""
    if platform is Platform.V6:
        return bool(V6_SUBMISSION_ID.match(submission_id))
    return CANONICAL_UUID.fullmatch(submission_id) is not None  # str(UUID(id)) == id, without parsing it


class ScoringPhase(StrEnum):
    """A phase config of a challenge (`PHASE_CONFIG_TYPE` in Topcoder's ecs-runner)."""

    EXAMPLE = "EXAMPLE"
    PROVISIONAL = "PROVISIONAL"
    SYSTEM = "SYSTEM"

    @property
    def test_type(self) -> str:
        """`metadata.testType` and the v5 review's test type: `example`, `provisional`, `system`."""
        return self.value.lower()

    @property
    def summation_flag(self) -> str:
        """The review summation's phase flag: `isExample`, `isProvisional` or `isFinal` (SYSTEM)."""
        return _SUMMATION_FLAGS[self]

    @property
    def list_filter(self) -> str:
        """The `GET /reviewSummations` query parameter that selects this phase (`example=true`, ...)."""
        return self.value.lower()

    @property
    def priority(self) -> int:
        """Lower runs first when capacity is short: SYSTEM, then PROVISIONAL, then EXAMPLE."""
        return _PRIORITIES[self]


_SUMMATION_FLAGS = {
    ScoringPhase.EXAMPLE: "isExample",
    ScoringPhase.PROVISIONAL: "isProvisional",
    ScoringPhase.SYSTEM: "isFinal",
}
_PRIORITIES = {ScoringPhase.SYSTEM: 0, ScoringPhase.PROVISIONAL: 1, ScoringPhase.EXAMPLE: 2}


class PhaseConfig(ContractModel):
    """One phase config of a challenge: what a run of that phase scores and how long it may take."""

    phase: ScoringPhase
    start_seed: int = Field(default=1, ge=0, le=2**63 - 1)
    number_of_tests: int = Field(default=1, ge=1, le=1_000_000)
    # Seconds before the sweeper stops the task; None: the challenge's timeout. Written as `timeout`, the key
    # deployed code reads (its phase model forbids unknown keys); `timeoutSeconds` loads too (decision 101).
    timeout_seconds: int | None = Field(
        default=None,
        ge=30,
        le=86_400,
        validation_alias=AliasChoices("timeoutSeconds", "timeout_seconds", "timeout"),
        serialization_alias="timeout",
    )
    # A new submission launches a run of this phase (EXAMPLE and PROVISIONAL during the Submission phase);
    # SYSTEM is usually dispatched after the match instead.
    on_submission: bool = True


# Separates the submission id from the phase in a run id. Neither a UUID, a nanoid nor a phase contains it.
RUN_ID_SEPARATOR = "#"


@dataclass(frozen=True, order=True)
class RunKey:
    """The identity of one scorer run: the status-table key, the RunTask clientToken, tags and metrics."""

    submission_id: str
    phase: ScoringPhase

    @property
    def run_id(self) -> str:
        """`<submissionId>#<PHASE>`: the status table's partition key."""
        return f"{self.submission_id}{RUN_ID_SEPARATOR}{self.phase.value}"

    @classmethod
    def parse(cls, run_id: str) -> RunKey:
        submission_id, separator, phase = run_id.rpartition(RUN_ID_SEPARATOR)
        if not separator or not submission_id:
            raise ValueError(f"not a run id (<submissionId>#<PHASE>): {run_id[:80]!r}")
        return cls(submission_id, ScoringPhase(phase))

    def __str__(self) -> str:
        return self.run_id


def run_id(submission_id: str, phase: ScoringPhase | str) -> str:
    return RunKey(submission_id, ScoringPhase(phase)).run_id


def run_ids_of(submission_id: str) -> list[str]:
    """Every run id a submission can have: "where is submission X" reads these (phases are a closed set)."""
    return [run_id(submission_id, phase) for phase in ScoringPhase]


__all__ = [
    "RUN_ID_SEPARATOR",
    "V6_SUBMISSION_ID",
    "V6_SUBMISSION_TOPIC",
    "PhaseConfig",
    "Platform",
    "RunKey",
    "ScoringPhase",
    "run_id",
    "run_ids_of",
    "submission_id_fits",
]
