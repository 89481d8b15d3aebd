"""The platform profile per environment (decision 084): config rules and the wiring plan (the synthesized stacks:
test_platform_stacks.py).

An environment serves v5, v6 or both; each challenge is served by one of them, with its phase configs. The router
subscribes one Kafka mapping per platform's topic, the completion function gets the API of each platform, a v6
challenge's processor may invoke the completion function (its skipped runs) and nothing else may, and the status
table is keyed by run (`runId`) under a new name.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from infrastructure.config import EnvironmentConfigError, load_environment, parse_environment
from infrastructure.wiring import ResourceRefs, WiringPlan
from mm_contracts.models.challenge import ChallengeConfig, ScorerEnvironment
from mm_contracts.models.phase import V6_SUBMISSION_TOPIC, Platform, ScoringPhase
from mm_contracts.names import DEFAULT_SUBMISSION_TOPIC

REFS = ResourceRefs(sns_topic_arn="arn:topic", challenge_table_name="c", status_table_name="s", audit_queue_url="q")
V6_URL = "https://api.topcoder-dev.com/v6"
V5_FIELDS = ("reviewTypeId", "reviewerId", "scoreCardId")
V6_SMOKE_SUBMISSION = "SmokeSubmissn1"  # a 14-character nanoid
PHASES = [
    {"phase": "EXAMPLE", "startSeed": 1, "numberOfTests": 10, "timeoutSeconds": 600, "onSubmission": True},
    {"phase": "PROVISIONAL", "startSeed": 1001, "numberOfTests": 100},
    {"phase": "SYSTEM", "startSeed": 100001, "numberOfTests": 1000, "timeoutSeconds": 7200, "onSubmission": False},
]


def example_raw() -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(load_environment("example").model_dump_json(by_alias=True, exclude_none=True))
    for challenge in raw["challenges"]:
        challenge.pop("platform")  # as written in a config file: the environment's platform is the default
    return raw


def v6_raw() -> dict[str, Any]:
    """The example environment on the v6 profile: no v5 review fields, phases on the first challenge."""
    raw = example_raw()
    raw.update(platforms=["v6"], reviewApiUrl=V6_URL)
    raw.pop("submissionApiUrl")
    for challenge in raw["challenges"]:
        for field in V5_FIELDS:
            challenge.pop(field)
    raw["challenges"][0]["phases"] = copy.deepcopy(PHASES)
    raw["smoke"]["submissionId"] = V6_SMOKE_SUBMISSION  # the smoke challenge is now v6: its test submission too
    return raw


def both_raw() -> dict[str, Any]:
    raw = example_raw()
    raw.update(platforms=["v5", "v6"], reviewApiUrl=V6_URL)
    for challenge in raw["challenges"]:
        challenge["platform"] = "v5"
    first = raw["challenges"][0]
    first.update(platform="v6", phases=copy.deepcopy(PHASES))
    raw["smoke"]["submissionId"] = V6_SMOKE_SUBMISSION
    return raw


def refused(raw: dict[str, Any]) -> str:
    with pytest.raises(EnvironmentConfigError) as error:
        parse_environment(raw)
    return str(error.value)


# ------------------------------------------------------------------ config rules
def test_the_smoke_submission_has_the_id_form_of_its_challenges_platform() -> None:
    v6 = v6_raw()
    v6["smoke"]["submissionId"] = example_raw()["smoke"]["submissionId"]  # a UUID for a v6 smoke challenge
    assert "smoke.submissionId must be a 14-character nanoid" in refused(v6)
    v5 = example_raw()
    v5["smoke"]["submissionId"] = V6_SMOKE_SUBMISSION  # a nanoid for a v5 smoke challenge
    assert "smoke.submissionId must be a canonical UUID" in refused(v5)
    assert parse_environment(v6_raw()).smoke_platform is Platform.V6


def test_an_environment_without_a_profile_serves_v5_and_so_do_its_challenges() -> None:
    raw = example_raw()
    raw.pop("platforms")

    config = parse_environment(raw)

    assert config.platforms == (Platform.V5,)
    assert {challenge.platform for challenge in config.challenges} == {Platform.V5}


def test_a_v6_environment_needs_the_review_api_and_refuses_an_unused_submission_api() -> None:
    config = parse_environment(v6_raw())
    assert config.platforms == (Platform.V6,)
    assert {challenge.platform for challenge in config.challenges} == {Platform.V6}  # the single platform

    without = v6_raw()
    without.pop("reviewApiUrl")
    assert "reviewApiUrl is required when platforms has v6" in refused(without)
    unused = v6_raw() | {"submissionApiUrl": "https://api.topcoder-dev.com/v5"}
    assert "submissionApiUrl is set but platforms has no v5" in refused(unused)
    v5_without = example_raw()
    v5_without.pop("submissionApiUrl")
    assert "submissionApiUrl is required when platforms has v5" in refused(v5_without)
    assert "each platform at most once" in refused(example_raw() | {"platforms": ["v5", "v5"]})


def test_in_an_environment_serving_both_each_challenge_names_its_platform() -> None:
    config = parse_environment(both_raw())
    assert [c.platform for c in config.challenges] == [Platform.V6, Platform.V5, Platform.V5]

    unnamed = both_raw()
    challenge = unnamed["challenges"][1]
    challenge.pop("platform")
    message = refused(unnamed)
    assert f"challenges[{challenge['challengeId']}].platform is required" in message


def test_a_challenge_platform_must_be_one_of_the_environments() -> None:
    raw = example_raw()
    raw["challenges"][2]["platform"] = "v6"

    message = refused(raw)

    assert f"challenges[{raw['challenges'][2]['challengeId']}].platform is v6" in message
    assert "not one of the environment's platforms (v5)" in message


@pytest.mark.parametrize("field", V5_FIELDS)
def test_a_v5_challenge_needs_the_v5_review_fields_and_a_v6_challenge_does_not(field: str) -> None:
    raw = both_raw()
    v5_challenge = raw["challenges"][1]
    v5_challenge.pop(field)

    message = refused(raw)

    assert f"challenges[{v5_challenge['challengeId']}]" in message
    assert field in message
    v6_only = both_raw()
    v6_only["challenges"][0].pop(field)
    assert parse_environment(v6_only).challenges[0].platform is Platform.V6


def test_phase_errors_name_the_challenge_and_the_deploy_time_field() -> None:
    duplicate = v6_raw()
    duplicate["challenges"][0]["phases"] = [*copy.deepcopy(PHASES), {"phase": "EXAMPLE"}]
    challenge_id = duplicate["challenges"][0]["challengeId"]
    assert f"challenges[{challenge_id}]: phases: each phase at most once" in refused(duplicate)

    too_short = v6_raw()
    too_short["challenges"][0]["phases"][1]["timeoutSeconds"] = 5
    assert f"challenges[{challenge_id}].phases.1.timeoutSeconds" in refused(too_short)

    v5_two = example_raw()
    v5_two["challenges"][0]["phases"] = copy.deepcopy(PHASES[:2])  # two phases on each new submission
    message = refused(v5_two)
    assert f"challenges[{v5_two['challenges'][0]['challengeId']}]" in message
    assert "exactly one phase per new submission" in message


def test_the_v6_topic_is_not_a_v5_topic() -> None:
    raw = example_raw()
    raw["kafka"]["topic"] = V6_SUBMISSION_TOPIC

    assert "kafka.topic is the v5 topic" in refused(raw)


# ------------------------------------------------------------------ the wiring plan per profile
@pytest.mark.parametrize(
    ("raw", "topics", "groups"),
    [
        (example_raw, (DEFAULT_SUBMISSION_TOPIC,), ("mm-processor-example",)),
        (v6_raw, (V6_SUBMISSION_TOPIC,), ("mm-processor-example-v6",)),
        (
            both_raw,
            (DEFAULT_SUBMISSION_TOPIC, V6_SUBMISSION_TOPIC),
            ("mm-processor-example", "mm-processor-example-v6"),
        ),
    ],
    ids=["v5", "v6", "both"],
)
def test_the_router_accepts_and_subscribes_one_topic_per_platform(
    raw: Any, topics: tuple[str, ...], groups: tuple[str, ...]
) -> None:
    plan = WiringPlan(parse_environment(raw()))

    env = plan.router_settings(REFS).to_env()

    assert env["ACCEPTED_TOPICS"] == ",".join(topics)
    assert env["PLATFORMS"] == ",".join(p.value for p in plan.config.platforms)
    assert tuple(s.topic for s in plan.kafka_sources()) == topics
    # v5 keeps the consumer group it always had (its offsets); v6 has its own
    assert tuple(s.consumer_group_id for s in plan.kafka_sources()) == groups
    assert [arn.rsplit("/", 1)[1] for arn in plan.kafka_topic_arns()] == list(topics)


def test_the_completion_function_gets_the_api_of_each_platform_it_reports_to() -> None:
    v5, v6, both = (
        WiringPlan(parse_environment(raw())).completion_settings(REFS).to_env()
        for raw in (
            example_raw,
            v6_raw,
            both_raw,
        )
    )

    assert ("SUBMISSION_API_URL" in v5, "REVIEW_API_URL" in v5) == (True, False)
    assert ("SUBMISSION_API_URL" in v6, v6.get("REVIEW_API_URL")) == (False, V6_URL)
    assert ("SUBMISSION_API_URL" in both, both.get("REVIEW_API_URL")) == (True, V6_URL)


def test_only_a_v6_challenge_processor_is_told_the_completion_function() -> None:
    plan = WiringPlan(parse_environment(both_raw()))
    v6_challenge, v5_challenge = plan.config.challenges[0], plan.config.challenges[1]

    assert plan.challenge_settings(v6_challenge, REFS).to_env()["COMPLETION_FUNCTION_NAME"] == "mm-example-completion"
    assert "COMPLETION_FUNCTION_NAME" not in plan.challenge_settings(v5_challenge, REFS).to_env()


def test_the_challenge_config_document_carries_platform_phases_and_scorer_environment() -> None:
    raw = both_raw()
    raw["challenges"][0].update(scorerEnvironment="topcoder_ecs_runner", scorecardId="Rk2mPq7sTz9wXa")
    plan = WiringPlan(parse_environment(raw))
    v6_challenge, v5_challenge = plan.config.challenges[0], plan.config.challenges[1]

    document = ChallengeConfig.model_validate_json(plan.challenge_config(v6_challenge).to_json())

    assert document.platform is Platform.V6
    assert document.scorer_environment is ScorerEnvironment.TOPCODER_ECS_RUNNER
    assert document.scorecard_id == "Rk2mPq7sTz9wXa"
    assert [
        (p.phase, p.start_seed, p.number_of_tests, p.timeout_seconds, p.on_submission) for p in document.phases
    ] == [
        (ScoringPhase.EXAMPLE, 1, 10, 600, True),
        (ScoringPhase.PROVISIONAL, 1001, 100, None, True),
        (ScoringPhase.SYSTEM, 100001, 1000, 7200, False),
    ]
    assert [p.phase for p in document.submission_phases] == [ScoringPhase.PROVISIONAL, ScoringPhase.EXAMPLE]
    assert document.phase_timeout(ScoringPhase.PROVISIONAL) == v6_challenge.timeout_seconds
    v5_document = plan.challenge_config(v5_challenge)
    assert (v5_document.platform, v5_document.phases) == (Platform.V5, ())


def test_the_challenge_table_rows_carry_the_platform() -> None:
    plan = WiringPlan(parse_environment(both_raw()))

    platforms = {r.challenge_id: r.platform for r in plan.challenge_records() if r.alias_of is None}

    assert list(platforms.values()) == [Platform.V6, Platform.V5, Platform.V5]


def test_the_run_table_has_a_new_name() -> None:
    names = WiringPlan(load_environment("example")).names

    assert names.status_table == "mm-example-runs"
    assert names.legacy_status_table == "mm-example-submission-status"


# ------------------------------------------------------------------ the shipped environments
def test_the_shipped_profiles() -> None:
    profiles = {name: load_environment(name) for name in ("example", "dev", "staging", "production")}

    assert {name: config.platforms for name, config in profiles.items()} == {
        "example": (Platform.V5,),
        "dev": (Platform.V6,),
        "staging": (Platform.V5, Platform.V6),
        "production": (Platform.V5,),
    }
    dev = WiringPlan(profiles["dev"])
    for challenge in profiles["dev"].challenges:
        document = dev.challenge_config(challenge)
        assert [p.phase for p in document.submission_phases] == [ScoringPhase.PROVISIONAL, ScoringPhase.EXAMPLE]
        assert document.phase_config(ScoringPhase.SYSTEM) is not None
    assert sorted(c.served_by.value for c in profiles["staging"].challenges) == ["v5", "v6"]
