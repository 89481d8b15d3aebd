"""Update expressions in the DynamoDB emulator (local_pipeline.emulator.dynamodb_expressions) are parsed once per
string and the answers stay moto's: the same expression with other names and values, new items, failed
conditions, parse errors, transactions."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.comparisons import ConditionExpressionParser
from moto.dynamodb.parsing.tokens import ExpressionTokenizer

from local_pipeline.emulator import dynamodb_expressions

TABLE = "runs"
SET_STATE = "SET #s = :s, updatedAt = :u, attempt = if_not_exists(attempt, :zero) + :one REMOVE lease"


def _update(client: Any, pk: str, **kwargs: Any) -> Any:
    try:
        answer = client.update_item(TableName=TABLE, Key={"pk": {"S": pk}}, **kwargs)
    except ClientError as error:
        return ("error", error.response["Error"]["Code"], error.response["Error"]["Message"])
    return {k: v for k, v in answer.items() if k != "ResponseMetadata"}


def _values(state: str, updated: int) -> dict[str, Any]:
    return {":s": {"S": state}, ":u": {"N": str(updated)}, ":zero": {"N": "0"}, ":one": {"N": "1"}}


def _answers() -> list[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(TableName=TABLE, Item={"pk": {"S": "a"}, "state": {"S": "NEW"}, "lease": {"S": "w1"}})
        answers: list[Any] = []
        for n, (pk, name, state) in enumerate(
            [("a", "state", "LAUNCHED"), ("a", "phase", "SYSTEM"), ("b", "state", "NEW"), ("a", "state", "DONE")]
        ):
            answers.append(
                _update(
                    client,
                    pk,
                    UpdateExpression=SET_STATE,
                    ExpressionAttributeNames={"#s": name},
                    ExpressionAttributeValues=_values(state, n),
                    ReturnValues="ALL_NEW" if n % 2 else "UPDATED_OLD",
                )
            )
        answers.append(
            _update(
                client,
                "a",
                UpdateExpression=SET_STATE,
                ConditionExpression="#s = :s",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=_values("NOPE", 9),
            )
        )
        for expected in ("LAUNCHED", "NEW", "DONE", "DONE"):  # one condition string, other values: pass and fail
            answers.append(
                _update(
                    client,
                    "a",
                    UpdateExpression="SET checkedAt = :u",
                    ConditionExpression="#s = :expected AND attribute_exists(pk)",
                    ExpressionAttributeNames={"#s": "state"},
                    ExpressionAttributeValues={":expected": {"S": expected}, ":u": {"N": "5"}},
                    ReturnValues="ALL_OLD",
                )
            )
        answers.append(  # a name the condition does not use: moto's error
            _update(
                client,
                "a",
                UpdateExpression="SET checkedAt = :u",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#unused": "state"},
                ExpressionAttributeValues={":u": {"N": "6"}},
            )
        )
        for _ in range(2):  # a parse error, twice: moto's error each time
            answers.append(
                _update(client, "a", UpdateExpression="SET = :s", ExpressionAttributeValues={":s": {"S": "x"}})
            )
        update: Any = {
            "TableName": TABLE,
            "UpdateExpression": SET_STATE,
            "ExpressionAttributeNames": {"#s": "state"},
        }
        transaction: Any = [
            {"Update": {**update, "Key": {"pk": {"S": "a"}}, "ExpressionAttributeValues": _values("T1", 20)}},
            {"Update": {**update, "Key": {"pk": {"S": "c"}}, "ExpressionAttributeValues": _values("T2", 21)}},
        ]
        client.transact_write_items(TransactItems=transaction)
        answers.append(sorted(client.scan(TableName=TABLE)["Items"], key=lambda item: item["pk"]["S"]))
        for state in ("T1", "T2", "T1"):  # a filter: the same string, other values
            answers.append(
                client.scan(
                    TableName=TABLE,
                    FilterExpression="#s = :s",
                    ExpressionAttributeNames={"#s": "state"},
                    ExpressionAttributeValues={":s": {"S": state}},
                )["Items"]
            )
        return answers


def test_the_answers_and_the_items_are_motos_own() -> None:
    unwrapped = _answers()
    assert dynamodb_expressions.install()
    try:
        assert _answers() == unwrapped
    finally:
        dynamodb_expressions.uninstall()
    assert unwrapped[4][1] == "ConditionalCheckFailedException"
    assert [isinstance(answer, tuple) for answer in unwrapped[5:9]] == [True, True, False, False]
    assert unwrapped[9][1] == "ValidationException"
    assert unwrapped[10] == unwrapped[11]
    assert unwrapped[10][0] == "error"
    assert unwrapped[-3] == unwrapped[-1] != unwrapped[-2]


def test_an_update_expression_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto tokenizes and parses it twice per UpdateItem and once per transaction Update."""
    parses: list[str] = []
    moto_make_list = ExpressionTokenizer.__dict__["make_list"].__func__

    def counted(cls: Any, expression: str) -> Any:
        parses.append(expression)
        return moto_make_list(cls, expression)

    monkeypatch.setattr(ExpressionTokenizer, "make_list", classmethod(counted))
    assert dynamodb_expressions.install()
    try:
        _answers()
    finally:
        dynamodb_expressions.uninstall()
    assert parses.count(SET_STATE) == 1
    assert parses.count("SET = :s") == 2  # not kept: it raised


def test_a_condition_is_parsed_once_per_expression_names_and_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto parses a condition in the handler and again in the backend, every call."""
    parses: list[str | None] = []
    moto_lex = ConditionExpressionParser._lex_condition_expression

    def counted(self: ConditionExpressionParser) -> Any:
        parses.append(self.condition_expression)
        return moto_lex(self)

    monkeypatch.setattr(ConditionExpressionParser, "_lex_condition_expression", counted)
    assert dynamodb_expressions.install()
    try:
        _answers()
    finally:
        dynamodb_expressions.uninstall()
    assert parses.count("#s = :expected AND attribute_exists(pk)") == 3  # three distinct values maps
    assert parses.count("#s = :s") == 1 + 2  # the failed condition; the filter with two states


def test_install_is_a_no_op_on_another_moto_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dynamodb_expressions.importlib.metadata, "version", lambda name: "0.0.0")
    assert not dynamodb_expressions.install()
    dynamodb_expressions.uninstall()
