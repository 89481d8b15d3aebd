"""A submission the pipeline refused to score, as the run table holds it, for the rerun and dispatch-system tests
(a skipped submission is never a member's latest: decision 109)."""

from __future__ import annotations

from datetime import timedelta

from mm_contracts.models.phase import Platform, ScoringPhase, run_id
from tests.unit.operator_tools.conftest import ROUTE_PLANNER, Deployed, routed_submission
from tests.unit.operator_tools.rerun_helpers import _BASE, status_store, submission_id


def skipped(deployed: Deployed, n: int, member_id: int, *, minutes: int, skip_reason: str | None) -> str:
    """Submission `n` of `member_id`, recorded as skipped: with the router's `skip_reason` in its routed message
    (a v6 submission to an inactive challenge), or None (the processor's own skip, e.g. no phase triggered)."""
    routed = routed_submission(submission_id(n), Platform.V6).model_copy(
        update={
            "challenge_id": ROUTE_PLANNER,
            "member_id": member_id,
            "created": _BASE + timedelta(minutes=minutes),
            "skip_reason": skip_reason,
        }
    )
    phase = ScoringPhase.PROVISIONAL
    assert status_store(deployed).record_skipped(routed, phase=phase, scorer_type="route-planner", reason="skipped")
    return run_id(routed.submission_id, phase)
