"""`infrastructure.aws_calls`: the AWS calls each function's code makes, read from the code (decision 048).

The pinned sets make a new call show up as a diff here, and then in the permission check
(tests/infrastructure/test_permissions.py) until its role grants it."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from infrastructure import aws_calls as scanner
from infrastructure import packaging
from infrastructure.aws_calls import (
    HANDLERS_BY_FUNCTION,
    PROJECT_METHODS_NAMED_LIKE_OPERATIONS,
    AmbiguousCallError,
    AwsCall,
    UnknownFunctionError,
    aws_calls,
    calls_in,
    module_graph,
    reachable_code,
)

PINNED: dict[str, set[str]] = {
    "router": {
        "dynamodb.BatchGetItem",  # challenge table, audit marks
        "dynamodb.BatchWriteItem",  # audit marks
        "sns.PublishBatch",
        "sqs.SendMessageBatch",  # audit queue
    },
    "challenge": {
        "dynamodb.BatchGetItem",  # a member's other runs (supersede, decision 095)
        "dynamodb.GetItem",
        "dynamodb.PutItem",
        "dynamodb.Query",  # the capacity table's pools and queue head (decision 097)
        "dynamodb.TransactWriteItems",  # enqueue, admit, requeue, cancel: one transaction each (decision 094)
        "dynamodb.UpdateItem",
        "ecs.RunTask",
        "ecs.StopTask",  # a superseded running task (decision 095)
        "ecs.TagResource",  # implicit: RunTask with tags
        "iam.PassRole",  # implicit: RunTask passes the task roles
        "lambda.Invoke",  # a skipped v6 run's "report due" event to the completion function (decision 084)
        "sqs.SendMessage",  # an admitted run of its challenge to its own queue
        "ssm.GetParameter",  # its config, the caps; the token in the insecure mode
        "secretsmanager.GetSecretValue",  # the token via the Auth0 proxy, insecure mode only
    },
    "completion": {
        "dynamodb.BatchGetItem",  # a submission's runs (decision 084)
        "dynamodb.GetItem",
        "dynamodb.Query",  # the capacity table (decision 097)
        "dynamodb.TransactWriteItems",  # admissions of the env-wide dispatch (decision 096)
        "dynamodb.UpdateItem",
        "ecs.DescribeTasks",
        "sqs.GetQueueUrl",
        "sqs.SendMessage",  # relaunch into the challenge queue (decision 072), admitted runs (decision 096)
        "ssm.GetParameter",
        "secretsmanager.GetSecretValue",
    },
    "sweeper": {
        "dynamodb.BatchGetItem",
        "dynamodb.GetItem",
        "dynamodb.Query",
        "dynamodb.TransactWriteItems",  # the slot reconciler and the safety-net dispatch (decision 096)
        "dynamodb.UpdateItem",
        "ecs.DescribeTasks",
        "ecs.ListTasks",
        "ecs.StopTask",
        "lambda.Invoke",
        "sqs.GetQueueUrl",  # admitted runs to their challenge queues, as the completion function
        "sqs.SendMessage",
        "ssm.GetParameter",  # the caps and the challenge configs
        "ssm.GetParameters",  # their versions, stamped on the pool items (decision 121)
    },
    "certificate-monitor": {
        "secretsmanager.GetSecretValue",  # the client certificate (mTLS only)
    },
    "scorer-token-refresher": {
        "ssm.GetParameter",  # the stored scorer token (decision 091)
        "ssm.PutParameter",  # created on the first run, overwritten near expiry
        "secretsmanager.GetSecretValue",  # the Auth0 credentials
    },
}


@pytest.mark.parametrize("function", sorted(PINNED))
def test_each_function_makes_exactly_the_pinned_calls(function: str) -> None:
    assert {f"{c.service}.{c.operation}" for c in aws_calls(function)} == PINNED[function]


def test_iam_actions_follow_the_service_authorization_reference() -> None:
    actions = {c.operation: c.iam_action for f in PINNED for c in aws_calls(f)}
    assert actions["PublishBatch"] == "sns:Publish"
    assert actions["SendMessageBatch"] == "sqs:SendMessage"
    assert actions["Invoke"] == "lambda:InvokeFunction"
    assert actions["Query"] == "dynamodb:Query"
    # a transaction has no action of its own: it is authorized per item (decision 097)
    transaction = {c.iam_action for c in aws_calls("completion") if c.operation == "TransactWriteItems"}
    assert transaction == {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    }


def test_the_vpc_endpoint_services_are_the_client_services(tmp_path: Path) -> None:
    # H4's endpoint test reads `{call.service for call in aws_calls(f)}`: boto3 client names
    assert {c.service for c in aws_calls("sweeper")} == {"dynamodb", "ecs", "lambda", "sqs", "ssm"}


def _scan(tmp_path: Path, source: str) -> frozenset[AwsCall]:
    path = tmp_path / "probe.py"
    path.write_text(textwrap.dedent(source))
    tree = ast.parse(path.read_text())
    return calls_in([tree])


def test_the_scanner_finds_a_newly_added_call_in_a_module(tmp_path: Path) -> None:
    # Given a module that builds clients lazily, as mm_adapters.aws does, and calls them
    calls = _scan(
        tmp_path,
        """
        from mm_adapters import aws

        class Store:
            def delete(self, key):
                aws.client("dynamodb").delete_item(TableName="t", Key=key)

            def tasks(self):
                return aws.client("ecs").get_paginator("list_tasks").paginate(cluster="c")
        """,
    )
    # Then the call, the paginator's operation and their IAM actions are found
    assert AwsCall("dynamodb", "DeleteItem", "dynamodb:DeleteItem") in calls
    assert AwsCall("ecs", "ListTasks", "ecs:ListTasks") in calls


def test_a_new_call_in_the_sweepers_code_path_reaches_its_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a project module (on the scanner's root) imported by a handler, calling a new operation
    root = tmp_path
    (root / "probe_fn").mkdir()
    (root / "probe_fn" / "__init__.py").write_text("")
    (root / "probe_fn" / "handler.py").write_text(
        "from probe_fn.store import purge\n\ndef handler(event, context):\n    return purge()\n"
    )
    (root / "probe_fn" / "store.py").write_text(
        "import boto3\n\ndef purge():\n    boto3.client('sqs').purge_queue(QueueUrl='u')\n\n"
        "def never_called():\n    boto3.client('sqs').delete_queue(QueueUrl='u')\n"
    )
    monkeypatch.setattr(scanner, "ROOT", root)
    monkeypatch.setitem(scanner.FUNCTION_PACKAGES_BY_FUNCTION, "probe", "probe_fn")
    monkeypatch.setitem(scanner.HANDLERS_BY_FUNCTION, "probe", "probe_fn.handler.handler")
    scanner.aws_calls.cache_clear()
    try:
        calls = aws_calls("probe")
    finally:
        scanner.aws_calls.cache_clear()
    # Then the reachable call is found and the unreachable one is not
    assert calls == {AwsCall("sqs", "PurgeQueue", "sqs:PurgeQueue")}


def test_an_operation_name_two_services_share_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AmbiguousCallError, match="tag_resource"):
        _scan(
            tmp_path,
            """
            import boto3
            def tag():
                boto3.client("sns"); boto3.client("ecs")
                client.tag_resource(resourceArn="a", tags=[])
            """,
        )


def test_each_project_method_named_like_an_operation_is_a_real_project_method() -> None:
    defined: set[str] = set()
    for function in PINNED:
        for module in scanner.function_modules(function):
            path = scanner._module_file(module)
            assert path is not None
            defined |= {d.name for d in scanner._top_level_defs(scanner._parse(path))}
    assert set(PROJECT_METHODS_NAMED_LIKE_OPERATIONS) <= defined


def test_an_unknown_function_is_refused() -> None:
    with pytest.raises(UnknownFunctionError):
        aws_calls("no-such-function")


def test_reachability_starts_at_the_handler() -> None:
    code = reachable_code(scanner.function_modules("completion"), scanner.HANDLERS_BY_FUNCTION["completion"])
    names = {node.name for node in code if isinstance(node, ast.FunctionDef)}
    assert "handler" in names
    assert "find_due" not in names  # the sweeper's query is not the completion's


@pytest.mark.parametrize("function", sorted(HANDLERS_BY_FUNCTION))
def test_every_module_a_function_can_run_ships_in_its_own_asset(function: str) -> None:
    # Given the modules the handler imports, transitively (lazy imports included)
    entry = HANDLERS_BY_FUNCTION[function].rpartition(".")[0]
    packages = {module.split(".")[0] for module in module_graph(entry)}
    # Then each is in the function's asset: its own package and the shared ones, never another function's
    assert packages <= {packaging.FUNCTION_PACKAGES[function], *packaging.SHARED_PACKAGES}
    assert packaging.FUNCTION_PACKAGES[function] in packages
