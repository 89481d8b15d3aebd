"""Hypothesis strategies: the world the fuzz inputs are aimed at, and the hostile values they are made of.

Every strategy starts from a valid input most of the time and breaks one or a few parts of it, so the fuzz
reaches the deep checks (URL policy, challenge resolution, the status store) and not only the parser. The
inputs of each function are built from these in `kafka_inputs.py` (router), `sqs_inputs.py` (challenge
processor) and `ecs_inputs.py` (completion); the real shapes come from tests/builders.py.
"""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import strategies as st

from mm_contracts.models.phase import ScoringPhase, run_id
from tests.builders import ACCOUNT, REGION

# ---------------------------------------------------------------- the world the inputs are aimed at
ALLOWED_URL_HOSTS = ("topcoder-submissions.s3.amazonaws.com", ".topcoder.com")
VALID_URL = "https://topcoder-submissions.s3.amazonaws.com/mm/solution.zip"
KNOWN_CHALLENGE = "5a0c0f57-8b70-4a2b-9f3e-1c2d3e4f5a6b"  # active, also reachable by its legacy id
KNOWN_LEGACY_ID = 30_054_321
INACTIVE_CHALLENGE = "0f9e8d7c-6b5a-4f3e-8d2c-1b0a9f8e7d6c"
FOREIGN_CHALLENGE = "7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"  # not in the challenge table
ENVIRONMENT = "fuzz"
# A canary for the insecure credentials mode: it may sit in an event, it must never come out of one.
CANARY_TOKEN = "eyJhbGciOiJSUzI1NiJ9.FUZZ-CANARY-M2M-TOKEN.c2lnbmF0dXJl"

LONE_SURROGATES = ("\ud800", "\udfff", "a\udc80b", "\udbff\ud800")
HOSTILE_STRINGS = (
    "",
    " ",
    "\t\n",
    "\x00",
    "null",
    "undefined",
    "\u202e\u0041",
    "\uff41\uff42\uff43",  # full-width look-alikes
    "😀",
    "a" * 3000,
    "9" * 5000,
    "' OR 1=1 --",
    "${jndi:ldap://x}",
    *LONE_SURROGATES,
)
HOSTILE_URLS = (
    "file:///etc/passwd",
    "file://topcoder-submissions.s3.amazonaws.com/mm/solution.zip",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "https://169.254.169.254/latest/meta-data/",
    "https://2852039166/latest/meta-data/",  # 169.254.169.254 as one decimal number
    "https://0xa9fea9fe/",
    "https://[fd00:ec2::254]/latest/meta-data/",
    "https://127.0.0.1/solution.zip",
    "https://localhost/solution.zip",
    "https://evil.example.com/solution.zip",
    "https://topcoder-submissions.s3.amazonaws.com.evil.com/solution.zip",
    "https://evil.com/topcoder-submissions.s3.amazonaws.com/solution.zip",
    "https://topcoder-submissions.s3.amazonaws.com@evil.com/solution.zip",
    "https://user:secret@topcoder-submissions.s3.amazonaws.com/solution.zip",
    "https://topcoder-submissions.s3.amazonaws.com:8443/solution.zip",
    "https://topcoder-submissions.s3.amazonaws.com:0/solution.zip",
    "https://topcoder-submissions.s3.amazonaws.com:99999/solution.zip",
    "https://topcoder-submissions.s3.amazonaws.com\\@evil.com/solution.zip",
    "https://topcoder-submissions.s3.amazonaws.com/a b.zip",
    "https://topcoder-submissions.s3.amazonaws.com/\r\nHost: evil.com",
    "http://topcoder-submissions.s3.amazonaws.com/solution.zip",
    "ftp://topcoder-submissions.s3.amazonaws.com/solution.zip",
    "s3://topcoder-submissions/mm/solution.zip",
    "javascript:alert(1)",
    "data:application/zip;base64,UEsDBA==",
    "//topcoder-submissions.s3.amazonaws.com/solution.zip",
    "https:///solution.zip",
    "https://",
    "https://topcoder.com/solution.zip",  # `.topcoder.com` allows subdomains, not the apex
    "https://xn--topcoder-submissions-9ob.s3.amazonaws.com/solution.zip",
    "https://topcoder-submissions.s3.amazonaws.com/" + "a" * 3000,
    # allowed by the policy: they must still go through
    "https://topcoder-submissions.s3.amazonaws.com:443/solution.zip",
    "https://TOPCODER-SUBMISSIONS.S3.AMAZONAWS.COM/solution.zip",
    "https://topcoder-submissions.s3.amazonaws.com./solution.zip",
    "https://www.topcoder.com/solution.zip",
    VALID_URL,
)
HOSTILE_INTS = (0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 10**40, -(10**40), 10**400)


def lowercase_uuid(value: uuid.UUID) -> str:
    return str(value)


uuids = st.uuids().map(lowercase_uuid)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(HOSTILE_INTS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(HOSTILE_STRINGS),
)
hostile_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


def id_variants(valid: str) -> st.SearchStrategy[Any]:
    """Hostile forms of an id, around a valid one (whitespace, case, braces, 3,000 chars, surrogates)."""
    return st.one_of(
        st.sampled_from(
            [
                valid.upper(),
                f" {valid} ",
                f"\t{valid}\n",
                "{" + valid + "}",
                f"urn:uuid:{valid}",
                valid.replace("-", ""),
                valid[:-1],
                valid + "0",
                valid + "\ud800",
                "\udfff" + valid[1:],
                valid * 83,  # ~3,000 characters
                "12345678",
                "abcdefghij-_KL",  # 14 characters: a v6 id
            ]
        ),
        uuids,
        hostile_values,
    )


# ---------------------------------------------------------------- mutation of a JSON object
# The fields whose rules guard the next stage are targeted more often.
_WEIGHT = {"url": 4, "memberId": 2, "challengeId": 2, "id": 2, "submissionId": 2}


def mutate_object(
    base: dict[str, Any], overrides: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """`base` with 0..3 fields deleted or replaced (by a field-specific or a generic hostile value)."""

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        obj = dict(base)
        targeted = draw(st.integers(0, 2)) > 0
        if overrides and targeted:
            # Targeted (2 in 3): one field, a value aimed at its own rules (reaches the deep checks).
            key = draw(st.sampled_from([k for k in sorted(overrides) for _ in range(_WEIGHT.get(k, 1))]))
            obj[key] = draw(overrides[key])
            return obj
        keys = sorted(set(base) | set(overrides))
        for _ in range(draw(st.integers(0, 3))):
            key = draw(st.sampled_from(keys) | st.text(max_size=6))
            choice = draw(st.sampled_from(["delete", "override", "generic"]))
            if choice == "delete":
                obj.pop(key, None)
            elif choice == "override" and key in overrides:
                obj[key] = draw(overrides[key])
            else:
                obj[key] = draw(hostile_values)
        return obj

    return build()


# ---------------------------------------------------------------- the tasks and runs the checkers seed
CLUSTER_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/mm-scorers"


def task_arn_of(seed: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/mm-scorers/{uuid.uuid5(uuid.NAMESPACE_URL, seed).hex}"


SEEDED_SUBMISSION = "3f2b8c1d-9e4a-4b7c-8d6e-5f4a3b2c1d0e"  # the one submission the pipeline launched
SEEDED_TASK_ARN = task_arn_of("seeded")
# The seeded submission's one run: the config's single (v5) phase, PROVISIONAL (`test_type`'s default).
SEEDED_PHASE = ScoringPhase.PROVISIONAL
SEEDED_RUN = run_id(SEEDED_SUBMISSION, SEEDED_PHASE)


# ================================================================ v6 (issue 10: the live platform, decisions 084-088)
# Served v6 challenges (in the challenge table with platform v6); KNOWN_CHALLENGE stays the v5 one, so a v6 record
# naming it is a platform mismatch and a v6 record naming FOREIGN_CHALLENGE is a challenge we do not serve.
V6_CHALLENGE = "9b2f6c1a-3d4e-4f50-8a61-7b8c9d0e1f2a"
V6_INACTIVE_CHALLENGE = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"
V6_ORIGINATOR = "review-api-v6"
V6_TIMESTAMP = "2026-12-01T10:00:00Z"  # fixed: the harness recognises a pristine envelope by equality
V6_SUBMITTED = "2026-12-01T09:59:58.123Z"
NANOID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
nanoids = st.text(alphabet=NANOID_ALPHABET, min_size=14, max_size=14)


def nanoid_variants(valid: str) -> st.SearchStrategy[Any]:
    """Near-valid v6 ids around a valid one: 13 / 15 characters, a character outside the alphabet, padding, a v5
    UUID, a number, full-width and surrogate look-alikes, plus every generic id variant."""
    return st.one_of(
        st.sampled_from(
            [
                valid[:-1],  # 13
                valid + "A",  # 15
                valid[:-1] + ".",
                valid[:-1] + "=",
                valid[:-1] + "/",
                valid[:-1] + "+",  # base64's alphabet, not nanoid's
                valid[:-1] + "\u00e9",
                valid[:-1] + "\uff21",  # full-width A
                valid[:-1] + "\ud800",
                f" {valid} ",  # the bus model strips whitespace: still the same id
                f"{valid}\n",
                valid.replace(valid[0], " ", 1),
                "-" * 14,
                "_" * 14,
                "0" * 14,
                "12345678901234",  # 14 digits: a valid nanoid too
                "3f2b8c1d-9e4a-4b7c-8d6e-5f4a3b2c1d0e",
                valid * 200,
            ]
        ),
        st.integers(),
        st.floats(allow_nan=True),
        uuids,
        st.text(alphabet=NANOID_ALPHABET, min_size=12, max_size=16),
        id_variants(valid),
    )


PHASE_VALUES = ("EXAMPLE", "PROVISIONAL", "SYSTEM")
_HOSTILE_PHASES = ("example", "Provisional", " SYSTEM", "SYSTEM ", "FINAL", "", "EXAMPLE#SYSTEM", "SYSTEM\x00")
phase_values = st.sampled_from(PHASE_VALUES) | st.sampled_from(_HOSTILE_PHASES) | hostile_values


# The world the completion checker seeds before every input: one v6 run LAUNCHED (its task), one recorded as
# skipped (no task, report due). No other run exists, so no other run may be written or reported.
V6_LAUNCHED_SUBMISSION = "Lq3x_Z9-aB7cD1"
V6_LAUNCHED_PHASE = ScoringPhase.PROVISIONAL
V6_LAUNCHED_RUN = run_id(V6_LAUNCHED_SUBMISSION, V6_LAUNCHED_PHASE)
V6_SKIPPED_SUBMISSION = "s4KiPpEd_run-1"
V6_SKIPPED_PHASE = ScoringPhase.EXAMPLE
V6_SKIPPED_RUN = run_id(V6_SKIPPED_SUBMISSION, V6_SKIPPED_PHASE)
V6_TASK_ARN = task_arn_of("seeded-v6")
