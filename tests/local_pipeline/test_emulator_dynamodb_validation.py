"""Update-expression validation in the DynamoDB emulator (local_pipeline.emulator.dynamodb_validation) builds each
processor's map once per traversal and copies the AST without `copy.deepcopy`'s generic machinery, and the answers
stay moto's: updates of every clause kind, functions, nested paths, list indexes, and moto's validation errors."""

from __future__ import annotations

import copy
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.parsing.ast_nodes import (  # type: ignore[attr-defined]  # untyped
    DDBTypedValue,
    DepthFirstTraverser,
    Node,
)
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]  # untyped

from local_pipeline.emulator import dynamodb_validation

TABLE, RANGED = "runs", "ranged"
UPDATES: list[dict[str, Any]] = [
    {
        "UpdateExpression": "SET #s = :s, updatedAt = :u, attempt = if_not_exists(attempt, :zero) + :one REMOVE lease",
        "ExpressionAttributeNames": {"#s": "state"},
        "ExpressionAttributeValues": {
            ":s": {"S": "LAUNCHED"},
            ":u": {"N": "7"},
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
        },
    },
    {
        "UpdateExpression": "SET events = list_append(if_not_exists(events, :empty), :e) ADD n :one, tags :t",
        "ExpressionAttributeValues": {
            ":empty": {"L": []},
            ":e": {"L": [{"S": "launched"}]},
            ":one": {"N": "1"},
            ":t": {"SS": ["a", "b"]},
        },
    },
    {"UpdateExpression": "DELETE tags :t", "ExpressionAttributeValues": {":t": {"SS": ["a"]}}},
    {
        "UpdateExpression": "SET detail.phase = :p, detail.#c = :c, events[0] = :first",
        "ExpressionAttributeNames": {"#c": "count"},
        "ExpressionAttributeValues": {":p": {"S": "SYSTEM"}, ":c": {"N": "3"}, ":first": {"S": "queued"}},
    },
    {"UpdateExpression": "REMOVE events[0], detail.phase"},
    {"UpdateExpression": "SET attempt = attempt - :one", "ExpressionAttributeValues": {":one": {"N": "1"}}},
    # moto's validation errors, each from another processor
    {"UpdateExpression": "SET pk = :s", "ExpressionAttributeValues": {":s": {"S": "x"}}},  # a key attribute
    {"UpdateExpression": "SET a = :s, a = :t", "ExpressionAttributeValues": {":s": {"S": "x"}, ":t": {"S": "y"}}},
    {"UpdateExpression": "SET a = :missing, b = :s", "ExpressionAttributeValues": {":s": {"S": "x"}}},
    {"UpdateExpression": "SET nowhere.deep = :s", "ExpressionAttributeValues": {":s": {"S": "x"}}},
    {"UpdateExpression": "SET a = absent + :one", "ExpressionAttributeValues": {":one": {"N": "1"}}},
    {
        "UpdateExpression": "SET a = #s + :one",
        "ExpressionAttributeNames": {"#s": "state"},
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    },
    {"UpdateExpression": "SET size = :s", "ExpressionAttributeValues": {":s": {"S": "x"}}},  # a reserved word
    {"UpdateExpression": "SET a = :s SET b = :s", "ExpressionAttributeValues": {":s": {"S": "x"}}},
    # the same expression as a passing one, other names: overlapping paths now (moto's error, not a remembered pass)
    {
        "UpdateExpression": "SET #s = :s, updatedAt = :u, attempt = if_not_exists(attempt, :zero) + :one REMOVE lease",
        "ExpressionAttributeNames": {"#s": "updatedAt"},
        "ExpressionAttributeValues": {":s": {"S": "x"}, ":u": {"N": "7"}, ":zero": {"N": "0"}, ":one": {"N": "1"}},
    },
]
ON_EACH_TABLE = {"UpdateExpression": "SET sk = :s", "ExpressionAttributeValues": {":s": {"S": "x"}}}


def _update(client: Any, pk: str, update: dict[str, Any], table: str = TABLE, sk: str | None = None) -> Any:
    key = {"pk": {"S": pk}, **({"sk": {"S": sk}} if sk else {})}
    try:
        answer = client.update_item(TableName=table, Key=key, ReturnValues="ALL_NEW", **update)
    except ClientError as error:
        return ("error", error.response["Error"]["Code"], error.response["Error"]["Message"])
    return answer["Attributes"]


def _answers() -> list[Any]:
    with mock_aws():
        client: Any = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(
            TableName=TABLE,
            Item={"pk": {"S": "a"}, "state": {"S": "NEW"}, "lease": {"S": "w1"}, "detail": {"M": {"x": {"N": "1"}}}},
        )
        client.create_table(
            TableName=RANGED,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        answers: list[Any] = []
        for pk in ("a", "fresh"):  # an existing item, then one the update creates
            answers.extend(_update(client, pk, update) for update in UPDATES)
        answers.append(_update(client, "a", ON_EACH_TABLE))  # passes: sk is no key of this table ...
        answers.append(_update(client, "a", ON_EACH_TABLE, table=RANGED, sk="b"))  # ... it is one of this one
        client.transact_write_items(
            TransactItems=[{"Update": {"TableName": TABLE, "Key": {"pk": {"S": "t"}}, **UPDATES[0]}}]
        )
        answers.append(sorted(client.scan(TableName=TABLE)["Items"], key=lambda item: item["pk"]["S"]))
        return answers


@pytest.fixture
def wrapped() -> Any:
    assert dynamodb_validation.install()
    yield
    dynamodb_validation.uninstall()


def test_the_answers_and_the_items_are_motos_own() -> None:
    unwrapped = _answers()
    assert dynamodb_validation.install()
    try:
        assert _answers() == unwrapped
    finally:
        dynamodb_validation.uninstall()
    errors = [answer for answer in unwrapped[: len(UPDATES)] if isinstance(answer, tuple)]
    assert len(errors) == 9
    assert {code for _, code, _ in errors} == {"ValidationException"}
    assert "overlap" in unwrapped[len(UPDATES) - 1][2]
    assert not isinstance(unwrapped[-3], tuple)
    assert unwrapped[-2][1] == "ValidationException"
    assert "part of the key" in unwrapped[-2][2]


def test_each_traversal_builds_its_processors_map_once(wrapped: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto builds it twice per node of every traversal (`nodes_to_be_processed` and `process`)."""
    builds: list[str] = []
    traversals: list[str] = []
    for kind in DepthFirstTraverser.__subclasses__():
        moto_map = kind._processing_map

        def counted(self: Any, moto_map: Any = moto_map) -> Any:
            builds.append(type(self).__name__)
            return moto_map(self)

        monkeypatch.setattr(kind, "_processing_map", counted)
    traverse = DepthFirstTraverser.traverse

    def counted_traverse(self: Any, node: Any) -> Any:
        traversals.append(type(self).__name__)
        return traverse(self, node)

    monkeypatch.setattr(DepthFirstTraverser, "traverse", counted_traverse)
    _answers()
    assert len(traversals) > 10 * len(UPDATES)
    assert sorted(builds) == sorted(traversals)


def test_the_checks_of_the_ast_alone_run_once_per_expression_names_and_keys(
    wrapped: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto runs them on every validation; here again only after a failure, or with other names or keys."""
    from local_pipeline.emulator import dynamodb_expressions

    checked: list[Any] = []
    traverse = DepthFirstTraverser.traverse

    def counted(self: Any, node: Any) -> Any:
        if type(self).__name__ == "ActionCountValidator":
            checked.append(node)
        return traverse(self, node)

    monkeypatch.setattr(DepthFirstTraverser, "traverse", counted)
    assert dynamodb_expressions.install()  # the parsed AST kept per string, as in the emulator process
    try:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            for table, keys in ((TABLE, ("pk",)), (RANGED, ("pk", "sk"))):
                schema: Any = [
                    {"AttributeName": k, "KeyType": kind} for k, kind in zip(keys, ("HASH", "RANGE"), strict=False)
                ]
                client.create_table(
                    TableName=table,
                    KeySchema=schema,
                    AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
                    BillingMode="PAY_PER_REQUEST",
                )
            counts = []
            for n in range(5):  # other values each time: checked once
                _update(
                    client,
                    "a",
                    {
                        **UPDATES[0],
                        "ExpressionAttributeValues": {**UPDATES[0]["ExpressionAttributeValues"], ":u": {"N": str(n)}},
                    },
                )
            counts.append(len(checked))
            for _ in range(2):  # the same AST with other names, failing: checked each time
                assert _update(client, "a", UPDATES[-1])[0] == "error"
            counts.append(len(checked))
            _update(client, "a", ON_EACH_TABLE)
            _update(client, "a", ON_EACH_TABLE)
            counts.append(len(checked))
            assert _update(client, "a", ON_EACH_TABLE, table=RANGED, sk="b")[0] == "error"  # other key attributes
            counts.append(len(checked))
    finally:
        dynamodb_expressions.uninstall()
    assert counts == [1, 3, 4, 5]  # moto: [6, 8, 10, 11] (it validates a new item twice)


def test_the_ast_is_copied_as_deepcopy_copies_it_without_its_generic_path(
    wrapped: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ast = UpdateExpressionParser.make(UPDATES[0]["UpdateExpression"])
    reconstructed: list[type] = []
    moto_reconstruct = copy._reconstruct  # type: ignore[attr-defined]

    def counted(x: Any, memo: Any, *args: Any, **kwargs: Any) -> Any:
        reconstructed.append(type(x))
        return moto_reconstruct(x, memo, *args, **kwargs)

    monkeypatch.setattr(copy, "_reconstruct", counted)
    _answers()
    assert not [kind for kind in reconstructed if issubclass(kind, Node)]  # moto's deepcopy: every node, every call
    copied = dynamodb_validation.tree_deepcopy(ast)
    reference = copy.deepcopy(ast)
    assert _shape(copied) == _shape(reference) == _shape(ast)
    assert copied is not ast
    assert copied.children[0] is not ast.children[0]
    assert copied.children[0].parent is copied  # parent links point into the copy, as deepcopy's memo makes them
    assert dynamodb_validation.tree_deepcopy(ast) is not copied  # a new tree each time
    with_values = dynamodb_validation.tree_deepcopy(ast)
    with_values.children[0].children[0].children[1] = DDBTypedValue(DynamoType({"S": "x"}))  # not a plain node
    assert _shape(dynamodb_validation.tree_deepcopy(with_values)) == _shape(copy.deepcopy(with_values))


def _shape(node: Any) -> Any:
    if isinstance(node, list):
        return [_shape(child) for child in node]
    if hasattr(node, "__dict__"):
        return (type(node), {k: _shape(v) for k, v in vars(node).items() if k != "parent"})
    return node


def test_another_moto_version_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dynamodb_validation.importlib.metadata, "version", lambda name: "0.0.0")
    assert not dynamodb_validation.install()
    assert not hasattr(DepthFirstTraverser.traverse, "_mm_validation_wrapper")
