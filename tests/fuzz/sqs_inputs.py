"""The challenge processor's fuzz inputs: SQS deliveries (body and receive count, duplicates included) of
RoutedSubmission bodies mutated from the router's valid v5 and v6 ones."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from mm_contracts.models.phase import V6_SUBMISSION_TOPIC
from mm_contracts.names import DEFAULT_SUBMISSION_TOPIC
from tests.fuzz.strategies import (
    FOREIGN_CHALLENGE,
    HOSTILE_INTS,
    HOSTILE_URLS,
    INACTIVE_CHALLENGE,
    KNOWN_CHALLENGE,
    KNOWN_LEGACY_ID,
    PHASE_VALUES,
    V6_SUBMITTED,
    VALID_URL,
    hostile_values,
    id_variants,
    mutate_object,
    nanoid_variants,
    nanoids,
    phase_values,
    uuids,
)


# ---------------------------------------------------------------- challenge processor: SQS bodies
def routed_body(submission_id: str, *, challenge_id: str = KNOWN_CHALLENGE, offset: int = 42) -> dict[str, Any]:
    """A valid RoutedSubmission on the wire (camelCase), as the router publishes it."""
    return {
        "schemaVersion": 1,
        "submissionId": submission_id,
        "challengeId": challenge_id,
        "legacyChallengeId": KNOWN_LEGACY_ID,
        "memberId": 40_158_994,
        "url": VALID_URL,
        "submissionType": "Contest Submission",
        "fileType": "zip",
        "submissionPhaseId": 764_567,
        "created": "2026-12-01T09:00:00Z",
        "correlationId": f"{DEFAULT_SUBMISSION_TOPIC}-0-{offset}",
        "source": {"topic": DEFAULT_SUBMISSION_TOPIC, "partition": 0, "offset": offset, "timestamp": 1_764_579_600_000},
        "routedAt": "2026-12-01T09:00:01Z",
    }


def _body_overrides(submission_id: str) -> dict[str, st.SearchStrategy[Any]]:
    return {
        "submissionId": id_variants(submission_id),
        "challengeId": st.sampled_from(
            [KNOWN_CHALLENGE, KNOWN_CHALLENGE.upper(), INACTIVE_CHALLENGE, FOREIGN_CHALLENGE, str(KNOWN_LEGACY_ID)]
        )
        | id_variants(KNOWN_CHALLENGE),
        "url": st.one_of(st.sampled_from(HOSTILE_URLS), st.sampled_from(HOSTILE_URLS), hostile_values),
        "memberId": st.sampled_from(HOSTILE_INTS) | st.sampled_from(["40158994", "1.5", "-3"]) | hostile_values,
        "schemaVersion": st.sampled_from([0, 2, "1", None]) | hostile_values,
        "source": st.fixed_dictionaries(
            {"topic": st.text(max_size=10), "partition": st.sampled_from([-1, 0, 2**40]), "offset": hostile_values}
        )
        | hostile_values,
        "fileType": hostile_values,
        "routedAt": st.sampled_from(["never", "2026-12-01T09:00:01Z"]) | hostile_values,
    }


@st.composite
def sqs_bodies(draw: st.DrawFn) -> str:
    """The body of one SQS message: mostly a mutated RoutedSubmission, sometimes not JSON at all."""
    kind = draw(st.sampled_from(["mutated"] * 6 + ["valid", "raw", "truncated", "json_other"]))
    submission_id = draw(uuids)
    body = routed_body(submission_id)
    if kind == "valid":
        return json.dumps(body)
    if kind == "raw":
        return draw(st.text(max_size=80))
    if kind == "json_other":
        return json.dumps(draw(hostile_values), allow_nan=True)
    text = json.dumps(draw(mutate_object(body, _body_overrides(submission_id))), allow_nan=True)
    if kind == "truncated":
        return text[: draw(st.integers(0, len(text) - 1))]
    return text


# A delivery: the body and its receive count; a list of 1..3 is delivered in order (duplicates included).
sqs_deliveries = st.lists(
    st.tuples(sqs_bodies(), st.integers(1, 3)),
    min_size=1,
    max_size=3,
).flatmap(lambda first: st.just(first) | st.just([*first, first[0]]))


# ---------------------------------------------------------------- v6: challenge processor SQS bodies
def v6_routed_body(
    submission_id: str,
    *,
    phase: str | None = None,
    skip_reason: str | None = None,
    offset: int = 7,
) -> dict[str, Any]:
    """A valid v6 RoutedSubmission on the wire, as the router publishes it (phase / skipReason when set)."""
    body: dict[str, Any] = {
        "schemaVersion": 1,
        "platform": "v6",
        "submissionId": submission_id,
        "challengeId": KNOWN_CHALLENGE,
        "memberId": 88_770_025,
        "memberHandle": "tourist",
        "url": VALID_URL,
        "fileType": "zip",
        "submittedDate": V6_SUBMITTED,
        "correlationId": f"{V6_SUBMISSION_TOPIC}-0-{offset}",
        "source": {"topic": V6_SUBMISSION_TOPIC, "partition": 0, "offset": offset, "timestamp": 1_764_579_600_000},
        "routedAt": "2026-12-01T09:00:01Z",
    }
    if phase is not None:
        body["phase"] = phase
    if skip_reason is not None:
        body["skipReason"] = skip_reason
    return body


def _v6_body_overrides(submission_id: str) -> dict[str, st.SearchStrategy[Any]]:
    return {
        **_body_overrides(submission_id),
        "submissionId": nanoid_variants(submission_id),
        "platform": st.sampled_from(["v5", "v6", "V6", "v7", "", None]) | hostile_values,
        "phase": st.sampled_from([*PHASE_VALUES, None]) | phase_values,
        "skipReason": st.sampled_from(["challenge_inactive", "", "x" * 300, "x" * 301, None]) | hostile_values,
        "memberHandle": st.sampled_from(["tourist", "x" * 64, "x" * 65, ""]) | hostile_values,
    }


@st.composite
def v6_sqs_bodies(draw: st.DrawFn) -> str:
    """One SQS body: mostly a (mutated) v6 RoutedSubmission, with or without a phase or a skip reason; some v5."""
    kind = draw(st.sampled_from(["mutated"] * 6 + ["valid"] * 3 + ["v5", "raw", "truncated"]))
    if kind == "v5":  # a v5 message at a v6 challenge's queue (the router routes by platform; a hand-sent one)
        return json.dumps(routed_body(draw(uuids)))
    if kind == "raw":
        return draw(st.text(max_size=80))
    submission_id = draw(nanoids)
    body = v6_routed_body(
        submission_id,
        phase=draw(st.sampled_from([None, None, None, *PHASE_VALUES])),
        skip_reason=draw(st.sampled_from([None] * 5 + ["challenge_inactive"])),
    )
    if kind == "valid":
        return json.dumps(body)
    text = json.dumps(draw(mutate_object(body, _v6_body_overrides(submission_id))), allow_nan=True)
    if kind == "truncated":
        return text[: draw(st.integers(0, len(text) - 1))]
    return text


v6_sqs_deliveries = st.lists(st.tuples(v6_sqs_bodies(), st.integers(1, 3)), min_size=1, max_size=3).flatmap(
    lambda first: st.just(first) | st.just([*first, first[0]])
)
