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
