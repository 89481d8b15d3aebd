"""The data construct (`mm_constructs/data.py`): tables from the shared definitions, each challenge's SSM
config and rows.

One synth per session (`tests.synth.synth_example`, fixtures in conftest.py); every test here runs on one
xdist worker.
"""

from __future__ import annotations

import json

import pytest

from infrastructure.wiring import WiringPlan, dynamodb_item
from mm_contracts.names import STATUS_TABLE_CHALLENGE_INDEX, STATUS_TABLE_TTL_ATTRIBUTE
from mm_contracts.tables import CHALLENGE_INDEX_ATTRIBUTES, challenge_table_definition, status_table_definition
from tests.infrastructure.templates import all_resources, by_name
from tests.synth import Synthesized

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]


def test_tables_match_the_shared_definitions(synthesized: Synthesized, plan: WiringPlan) -> None:
    tables = by_name(synthesized, "AWS::DynamoDB::Table", "TableName")
    for definition in (
        status_table_definition(plan.names.status_table),
        challenge_table_definition(plan.names.challenge_table),
    ):
        _, _, table = tables[definition["TableName"]]
        props = table["Properties"]
        assert props["KeySchema"] == definition["KeySchema"]
        assert sorted(props["AttributeDefinitions"], key=str) == sorted(definition["AttributeDefinitions"], key=str)
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props.get("GlobalSecondaryIndexes", []) == definition.get("GlobalSecondaryIndexes", [])
    status = tables[plan.names.status_table][2]
    assert status["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": STATUS_TABLE_TTL_ATTRIBUTE,
        "Enabled": True,
    }
    assert status["DeletionPolicy"] == "Retain"


def test_each_challenge_config_parameter_and_rows_are_written_from_the_plan(
    synthesized: Synthesized, plan: WiringPlan
) -> None:
    parameters = by_name(synthesized, "AWS::SSM::Parameter", "Name")
    custom = [r["Properties"] for _, _, r in all_resources(synthesized, "Custom::AWS")]
    for challenge in plan.config.challenges:
        _, _, parameter = parameters[plan.challenge_config_parameter(challenge.challenge_id)]
        assert json.loads(parameter["Properties"]["Value"]) == plan.challenge_config(challenge).to_wire()
        expected = [dynamodb_item(r) for r in plan.challenge_records_for([challenge])]
        writes = [c for c in custom if challenge.challenge_id in json.dumps(c["Create"])]
        assert len(writes) == 1
        create = writes[0]["Create"]
        body = json.dumps(create)
        for item in expected:
            for key, value in item.items():
                if key != "queueUrl":
                    assert json.dumps({key: value}, separators=(",", ":"))[1:-1] in body.replace('\\"', '"')


def test_the_challenge_index_projects_only_what_never_changes(synthesized: Synthesized, plan: WiringPlan) -> None:
    """Decision 108: `byChallenge` keys on the challenge and creation time and carries only attributes written
    once, so a run's state changes never write the index; `state` in particular is not projected."""
    _, _, table = by_name(synthesized, "AWS::DynamoDB::Table", "TableName")[plan.names.status_table]
    indexes = {i["IndexName"]: i for i in table["Properties"]["GlobalSecondaryIndexes"]}
    index = indexes[STATUS_TABLE_CHALLENGE_INDEX]
    assert index["KeySchema"] == [
        {"AttributeName": "challengeId", "KeyType": "HASH"},
        {"AttributeName": "createdAt", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(CHALLENGE_INDEX_ATTRIBUTES)}
    assert "state" not in index["Projection"]["NonKeyAttributes"]
