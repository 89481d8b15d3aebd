"""The platform profiles synthesized (decision 084): v5 (example), v6 (dev) and both (staging) side by side.

Each profile maps exactly its topics, the router reads them and the failure alarms watch every mapping, the run
table is keyed by run, only v6 challenge processors may invoke the completion function, the permission check holds,
and the SSM config documents carry platform and phases. The config rules and the plan: test_platforms.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from infrastructure.config import EnvironmentConfig, load_environment, parse_environment
from infrastructure.permissions import Templates, check
from infrastructure.wiring import ResourceRefs, WiringPlan
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.phase import V6_SUBMISSION_TOPIC, Platform, ScoringPhase
from mm_contracts.names import DEFAULT_SUBMISSION_TOPIC, STATUS_TABLE_PARTITION_KEY
from tests.synth import Synthesized, synth, synth_environment, synth_example

REFS = ResourceRefs(sns_topic_arn="arn:topic", challenge_table_name="c", status_table_name="s", audit_queue_url="q")
V6_URL = "https://api.topcoder-dev.com/v6"
V5_FIELDS = ("reviewTypeId", "reviewerId", "scoreCardId")
V6_SMOKE_SUBMISSION = "SmokeSubmissn1"  # a 14-character nanoid
PHASES = [
    {"phase": "EXAMPLE", "startSeed": 1, "numberOfTests": 10, "timeoutSeconds": 600, "onSubmission": True},
    {"phase": "PROVISIONAL", "startSeed": 1001, "numberOfTests": 100},
    {"phase": "SYSTEM", "startSeed": 100001, "numberOfTests": 1000, "timeoutSeconds": 7200, "onSubmission": False},
]


@pytest.fixture(scope="module")
def profiles() -> dict[str, Synthesized]:
    return {"v5": synth_example(), "v6": synth_environment("dev"), "both": synth_environment("staging")}


def _resources(synthesized: Synthesized, type_: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (stack, logical_id, resource)
        for stack, template in synthesized.templates.items()
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == type_
    ]


def _function(synthesized: Synthesized, name: str) -> tuple[str, dict[str, Any]]:
    for stack, _, resource in _resources(synthesized, "AWS::Lambda::Function"):
        if resource["Properties"].get("FunctionName") == name:
            return stack, resource
    raise AssertionError(name)


def _statements(synthesized: Synthesized, function_name: str) -> list[dict[str, Any]]:
    stack, function = _function(synthesized, function_name)
    role = synthesized.templates[stack]["Resources"][function["Properties"]["Role"]["Fn::GetAtt"][0]]
    return [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def _config(synthesized: Synthesized) -> EnvironmentConfig:
    return synthesized.config


@pytest.mark.synth
@pytest.mark.xdist_group("synth")
def test_each_profile_maps_exactly_its_topics_and_the_router_is_told_them(profiles: dict[str, Synthesized]) -> None:
    mappings: dict[str, dict[str, str]] = {}
    for profile, synthesized in profiles.items():
        plan = WiringPlan(_config(synthesized))
        kafka = {
            lid: r["Properties"]
            for _, lid, r in _resources(synthesized, "AWS::Lambda::EventSourceMapping")
            if "Topics" in r["Properties"]
        }
        found = {p["Topics"][0]: p["AmazonManagedKafkaEventSourceConfig"]["ConsumerGroupId"] for p in kafka.values()}
        assert all(len(p["Topics"]) == 1 for p in kafka.values())
        assert found == {s.topic: s.consumer_group_id for s in plan.kafka_sources()}, profile
        mappings[profile] = {p["Topics"][0]: lid for lid, p in kafka.items()}
        env = _function(synthesized, plan.names.router_function)[1]["Properties"]["Environment"]["Variables"]
        assert env["ACCEPTED_TOPICS"] == ",".join(plan.config.accepted_topics), profile
        assert env["PLATFORMS"] == ",".join(plan.config.platforms), profile

    assert set(mappings["v5"]) == {DEFAULT_SUBMISSION_TOPIC}
    assert set(mappings["v6"]) == {V6_SUBMISSION_TOPIC}
    assert set(mappings["both"]) == {DEFAULT_SUBMISSION_TOPIC, V6_SUBMISSION_TOPIC}


@pytest.mark.synth
@pytest.mark.xdist_group("synth")
def test_adding_v6_to_an_environment_keeps_its_v5_mapping(profiles: dict[str, Synthesized]) -> None:
    # The migration's first step (docs/deploy.md): staging as it was before v6, then as it is. A replaced v5
    # mapping would fail to create (its consumer group id is taken) or lose its place in the topic.
    raw: dict[str, Any] = json.loads(load_environment("staging").model_dump_json(by_alias=True, exclude_none=True))
    raw.update(platforms=["v5"])
    raw.pop("reviewApiUrl")
    raw["challenges"] = [c for c in raw["challenges"] if c["platform"] == "v5"]
    before = synth(parse_environment(raw), label="staging-v5", checks=False)

    def v5_mapping(synthesized: Synthesized) -> tuple[str, dict[str, Any]]:
        (found,) = [
            (lid, r["Properties"])
            for _, lid, r in _resources(synthesized, "AWS::Lambda::EventSourceMapping")
            if r["Properties"].get("Topics") == [DEFAULT_SUBMISSION_TOPIC]
        ]
        return found

    assert v5_mapping(profiles["both"]) == v5_mapping(before)


@pytest.mark.synth
@pytest.mark.xdist_group("synth")
def test_the_router_reads_every_subscribed_topic_and_the_failure_alarms_watch_every_mapping(
    profiles: dict[str, Synthesized],
) -> None:
    synthesized = profiles["both"]
    plan = WiringPlan(_config(synthesized))
    statements = _statements(synthesized, plan.names.router_function)
    read = next(s for s in statements if "kafka-cluster:ReadData" in s["Action"])
    groups = next(s for s in statements if "kafka-cluster:AlterGroup" in s["Action"])

    assert sorted(read["Resource"]) == sorted(plan.kafka_topic_arns())
    assert sorted(groups["Resource"]) == sorted(plan.kafka_group_arns())
    mapping_ids = {
        lid for _, lid, r in _resources(synthesized, "AWS::Lambda::EventSourceMapping") if "Topics" in r["Properties"]
    }
    watched = {
        dimension["Value"]["Ref"]
        for _, _, alarm in _resources(synthesized, "AWS::CloudWatch::Alarm")
        for dimension in alarm["Properties"].get("Dimensions", [])
        if dimension["Name"] == "EventSourceMappingUUID"
    }
    assert watched == mapping_ids


@pytest.mark.synth
@pytest.mark.xdist_group("synth")
def test_the_run_table_is_keyed_by_run_under_its_new_name(profiles: dict[str, Synthesized]) -> None:
    for profile, synthesized in profiles.items():
        names = WiringPlan(_config(synthesized)).names
        tables = {
            r["Properties"]["TableName"]: (lid, r) for _, lid, r in _resources(synthesized, "AWS::DynamoDB::Table")
        }
        assert names.legacy_status_table not in tables, profile
        logical_id, table = tables[names.status_table]
        assert logical_id.startswith("TablesRunTable"), profile  # a new logical id: the old table is not replaced
        assert table["Properties"]["KeySchema"] == [{"AttributeName": STATUS_TABLE_PARTITION_KEY, "KeyType": "HASH"}]


@pytest.mark.synth
@pytest.mark.xdist_group("synth")
def test_only_v6_challenge_processors_may_invoke_and_only_the_completion_function(
    profiles: dict[str, Synthesized],
) -> None:
    synthesized = profiles["both"]
    config = _config(synthesized)
    plan = WiringPlan(config)
    completion_arn = f"arn:aws:lambda:{config.region}:{config.account}:function:{plan.names.completion_function}"
    for challenge in config.challenges:
        invokes = [
            s
            for s in _statements(synthesized, plan.names.challenge_function(challenge.challenge_id))
            if "lambda:InvokeFunction" in json.dumps(s["Action"])
        ]
        if challenge.served_by is Platform.V6:
            assert [(s["Action"], s["Resource"]) for s in invokes] == [("lambda:InvokeFunction", completion_arn)]
        else:
            assert invokes == [], challenge.challenge_id


@pytest.mark.synth
@pytest.mark.xdist_group("synth")
@pytest.mark.parametrize("profile", ["v6", "both"])
def test_the_permission_check_holds_for_the_v6_and_the_mixed_profile(
    profiles: dict[str, Synthesized], profile: str
) -> None:
    synthesized = profiles[profile]

    findings = check(Templates(synthesized.templates, synthesized.config), WiringPlan(synthesized.config))

    assert findings.missing == [], "\n".join(findings.missing)
    assert findings.unused == [], "\n".join(findings.unused)


@pytest.mark.synth
@pytest.mark.xdist_group("synth")
def test_the_ssm_config_documents_carry_platform_and_phases(profiles: dict[str, Synthesized]) -> None:
    synthesized = profiles["both"]
    plan = WiringPlan(_config(synthesized))
    documents = {
        r["Properties"]["Name"]: ChallengeConfig.model_validate_json(r["Properties"]["Value"])
        for _, _, r in _resources(synthesized, "AWS::SSM::Parameter")
        if r["Properties"]["Name"].startswith(f"{plan.config.ssm_prefix}/challenges/")  # not the caps (097)
    }
    for challenge in plan.config.challenges:
        document = documents[plan.challenge_config_parameter(challenge.challenge_id)]
        assert document == plan.challenge_config(challenge)
        assert document.platform is challenge.served_by
    v6 = next(d for d in documents.values() if d.platform is Platform.V6)
    assert {p.phase for p in v6.submission_phases} == {ScoringPhase.EXAMPLE, ScoringPhase.PROVISIONAL}
    assert v6.phase_config(ScoringPhase.SYSTEM) is not None
