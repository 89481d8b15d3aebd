"""Short fuzz run (fixed seed, a few hundred inputs per function): each function's input properties.

About 800 Kafka records (200 batches), 320 SQS deliveries (150 sequences) and ~190 ECS events (90 sequences):
About 20 s of CPU on a 2-core machine.

Each property family is asserted on its own line, so hypothesis reports (and shrinks) each failing family
separately. The long run is `benchmarks/fuzz.py` (same strategies, >= 10,000 inputs per function).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.findings import Finding, Property, of_family
from tests.fuzz.moto_tables import isolated_aws
from tests.fuzz.targets import TARGETS, fixed_seed

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")


def fuzz_settings(max_examples: int) -> settings:
    return fixed_seed(max_examples)


def run(name: str, max_examples: int) -> None:
    """Fuzz target `name` with `max_examples` inputs (on a fresh moto account when it needs one)."""
    target = TARGETS[name]
    with isolated_aws() if target.needs_aws else contextlib.nullcontext() as table:
        run_checker(target.build(table).check, target.strategy, max_examples)


def run_checker(check: Callable[[Any], list[Finding]], strategy: st.SearchStrategy[Any], max_examples: int) -> None:
    # `holds` keeps its source line for line: hypothesis derives the fixed seed from it (derandomize), so the
    # same inputs run as before the fuzz was split by job.
    @fuzz_settings(max_examples)
    @given(strategy)
    def holds(value: Any) -> None:
        findings = check(value)
        assert not of_family(findings, Property.ESCAPED), of_family(findings, Property.ESCAPED)
        assert not of_family(findings, Property.STATES), of_family(findings, Property.STATES)
        assert not of_family(findings, Property.ACTED), of_family(findings, Property.ACTED)
        assert not of_family(findings, Property.OTHER), of_family(findings, Property.OTHER)

    holds()


def test_router_never_raises_accounts_each_record_once_and_publishes_only_valid_submissions() -> None:
    # Given hostile Kafka values (bytes, truncated / huge / nested JSON, mutated envelope and flat forms)
    # in mutated MSK event shapes, and healthy SNS, SQS and DynamoDB
    # When the router handles each batch
    # Then nothing escapes, each record is published xor audited, and every published body is valid
    run("router", max_examples=200)


def test_challenge_processor_launches_only_valid_bodies_once_and_fails_the_rest_with_a_reason() -> None:
    # Given SQS bodies mutated from a valid RoutedSubmission (ids, URLs, memberId, challenge, schema)
    # When the processor handles each delivery (duplicates included)
    # Then RunTask is called only for valid bodies of this challenge with an allowed URL, at most once
    # per submission, and every other body ends in RecordFailed with a reason
    run("processor", max_examples=150)


def test_completion_acts_only_on_the_launched_submission_and_raises_only_invalid_event_errors() -> None:
    # Given one LAUNCHED submission and STOPPED events mutated from its real event
    # When each event is parsed and processed
    # Then only InvalidEventError escapes, and no item or review appears for a submission never launched
    run("completion", max_examples=90)


# ---------------------------------------------------------------- v6 (issue 10)
def test_router_publishes_a_v6_record_only_when_it_is_a_valid_submission_of_a_served_challenge() -> None:
    # Given mostly v6 records (envelope or bare payload; ids of 13 / 15 characters, other alphabets, UUIDs,
    # numbers; memberIds as numbers; hostile URLs and handles; the v5 or a wrong topic; a v5 or unserved
    # challenge) mixed with v5 ones, in mutated MSK event shapes
    # When the router handles each batch
    # Then nothing escapes, each record is in one state, a published v6 body is its record's valid submission of
    # a served v6 challenge (skipReason exactly when the challenge is inactive), and a pristine one is published
    run("router-v6", max_examples=100)


def test_v6_challenge_processor_launches_only_the_phases_the_message_and_config_name_once_each() -> None:
    # Given SQS bodies mutated from a v6 RoutedSubmission (phase set / unset / unknown, skipReason, platform and
    # id form mismatched, v5 bodies) at a v6 challenge with EXAMPLE and PROVISIONAL (no SYSTEM)
    # When the processor handles each delivery (duplicates included)
    # Then RunTask only for a configured phase the message asks for, once per run; a skip launches nothing
    run("processor-v6", max_examples=80)


def test_completion_posts_a_v6_summation_only_for_a_run_the_pipeline_recorded() -> None:
    # Given one v6 run LAUNCHED and one recorded as skipped, STOPPED events of the launched task with MM_PHASE
    # missing / lower-case / unknown / duplicated, and report-due events (valid, malformed run ids, unknown runs)
    # When each event is parsed and processed
    # Then only InvalidEventError escapes; a run changes only on its own task's event (launched) or its own
    # report-due event (skipped); summations only for those two runs, at most one write each
    run("completion-v6", max_examples=60)


# ---------------------------------------------------------------- inputs the long run (benchmarks/fuzz.py) found
# Each was a finding of the oracle, not of the processor (the 3 December run of `make bench-long`: 32 of 10,000
# v6 delivery sequences); the processor's behaviour is asserted beside the checker's verdict.
def _v6_checked(deliveries: list[tuple[dict[str, Any], int]]) -> tuple[list[Finding], list[tuple[str, str]]]:
    import json

    from mm_contracts.models.phase import Platform
    from tests.fuzz.processor_checker import ProcessorChecker

    with isolated_aws() as table:
        checker = ProcessorChecker(table, Platform.V6)
        findings = checker.check([(json.dumps(body), receive_count) for body, receive_count in deliveries])
    return findings, checker.launched


def test_a_v6_id_with_whitespace_around_it_launches_the_runs_of_that_id_and_the_checker_agrees() -> None:
    from tests.fuzz.sqs_inputs import v6_routed_body

    # Given a v6 body whose submission id has spaces around it (every contract model strips its strings)
    # When the processor handles it
    findings, launched = _v6_checked([(v6_routed_body(" u8RNtJ-h_3U0Ex "), 1)])
    # Then it launches both on-submission runs of the id without the spaces, and the checker finds nothing
    assert sorted(launched) == [("u8RNtJ-h_3U0Ex", "EXAMPLE"), ("u8RNtJ-h_3U0Ex", "PROVISIONAL")]
    assert findings == []


def test_a_v6_run_recorded_as_skipped_is_not_launched_by_a_later_message_and_the_checker_agrees() -> None:
    from tests.fuzz.sqs_inputs import v6_routed_body

    # Given the EXAMPLE run of a submission recorded as skipped (its challenge was inactive when it was routed)
    skipped = v6_routed_body("M4gMJvcntER2dO", phase="EXAMPLE", skip_reason="challenge_inactive")
    # When a later new-submission message names the same submission, and another submission follows
    findings, launched = _v6_checked(
        [(skipped, 3), (v6_routed_body("M4gMJvcntER2dO"), 3), (v6_routed_body("xFhO7-Sso2dZ0p"), 2)]
    )
    # Then the skipped run is not launched again (one run per submission and phase), its PROVISIONAL run is, and so
    # are the other submission's: the checker finds nothing
    assert sorted(launched) == [
        ("M4gMJvcntER2dO", "PROVISIONAL"),
        ("xFhO7-Sso2dZ0p", "EXAMPLE"),
        ("xFhO7-Sso2dZ0p", "PROVISIONAL"),
    ]
    assert findings == []
