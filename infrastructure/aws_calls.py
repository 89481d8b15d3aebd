"""The AWS API calls each function's code makes, read from the code itself (decision 048).

Static analysis over the project's own modules, no import of them and no CDK:

1. the module graph: the handler's module and every project module it imports, transitively (imports inside
   functions included: a lazily imported module is still code the function can run);
2. what can run: module and class bodies, the handler, and (by name, an over-approximation) every function or
   method whose name is called or read in something that can run;
3. in what can run, clients created with a literal service name (`aws.client("sqs")`, `boto3.client(...)`,
   `session.client(...)`), and calls of a method whose name is an operation of one of those services
   (botocore's service models, `xform_name`), plus `get_paginator("...")` / `get_waiter("...")`.

An operation name two of a function's services share is refused (`AmbiguousCallError`) rather than guessed;
a project method named like an operation is listed, with its reason, in `PROJECT_METHODS_NAMED_LIKE_OPERATIONS`.
IAM actions are `<signing name>:<Operation>` except where the service authorizes a call under another
action (`IAM_ACTION_EXCEPTIONS`) or under the actions of its items (`ITEM_AUTHORIZED_OPERATIONS`: a DynamoDB
transaction); what the code causes without calling it is in `IMPLICIT_CALLS`.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import botocore.session
from botocore import xform_name

from infrastructure.packaging import FUNCTION_PACKAGES, SHARED_PACKAGES
from infrastructure.wiring import (
    CERTIFICATE_MONITOR_HANDLER,
    CHALLENGE_HANDLER,
    COMPLETION_HANDLER,
    ROUTER_HANDLER,
    SCORER_TOKEN_REFRESHER_HANDLER,
    SWEEPER_HANDLER,
)

ROOT = Path(__file__).resolve().parents[1]

# function key -> the package that holds its code: one source, the asset names (`packaging.FUNCTION_PACKAGES`).
FUNCTION_PACKAGES_BY_FUNCTION: dict[str, str] = FUNCTION_PACKAGES
HANDLERS_BY_FUNCTION: dict[str, str] = {
    "router": ROUTER_HANDLER,
    "challenge": CHALLENGE_HANDLER,
    "completion": COMPLETION_HANDLER,
    "sweeper": SWEEPER_HANDLER,
    "certificate-monitor": CERTIFICATE_MONITOR_HANDLER,
    "scorer-token-refresher": SCORER_TOKEN_REFRESHER_HANDLER,
}

# Client factories whose first argument names the service.
_CLIENT_FACTORIES = frozenset({"client", "resource"})

# Operations authorized under another IAM action (Service Authorization Reference, "Actions" tables):
# batch calls are authorized per entry as the single-entry action; Lambda's Invoke is lambda:InvokeFunction.
IAM_ACTION_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
    ("sns", "PublishBatch"): "sns:Publish",
    ("lambda", "Invoke"): "lambda:InvokeFunction",
    ("lambda", "InvokeAsync"): "lambda:InvokeFunction",
}

# Operations with no IAM action of their own, authorized per item under the actions of the items they carry:
# "Permissions for Put, Update, Delete, and Get actions are governed by the permissions used for the underlying
# PutItem, UpdateItem, DeleteItem, and GetItem operations. For the ConditionCheck action, you can use the
# dynamodb:ConditionCheckItem permission" (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/
# transaction-apis-iam.html). Which of them the code's transactions use, on which table, is the permission
# check's mapping (`infrastructure.permissions`), held to the store's transactions by a test (decision 097).
ITEM_AUTHORIZED_OPERATIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("dynamodb", "TransactWriteItems"): (
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    ),
    ("dynamodb", "TransactGetItems"): ("dynamodb:GetItem",),
}


# Methods of the project's own classes whose names are also operation names of a service the same code
# creates a client for: calls of these names are not AWS calls (a test holds each to a real project method).
PROJECT_METHODS_NAMED_LIKE_OPERATIONS: dict[str, str] = {
    "publish": "router_lambda.publisher.Publisher.publish: the router's batch publisher; its SNS call is publish_batch",
}


@dataclass(frozen=True, order=True)
class AwsCall:
    service: str  # boto3 client name, e.g. "dynamodb"
    operation: str  # botocore operation name, e.g. "PutItem"
    iam_action: str  # e.g. "dynamodb:PutItem"


@dataclass(frozen=True)
class ImplicitCall:
    """An action the service authorizes because of a call the code makes, invisible in the code itself."""

    function: str
    call: AwsCall
    reason: str


IMPLICIT_CALLS: tuple[ImplicitCall, ...] = (
    ImplicitCall(
        "challenge",
        AwsCall("ecs", "TagResource", "ecs:TagResource"),
        "RunTask with `tags` is also authorized as ecs:TagResource on the new task "
        "(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html)",
    ),
    ImplicitCall(
        "challenge",
        AwsCall("iam", "PassRole", "iam:PassRole"),
        "RunTask passes the task definition's task and execution roles: iam:PassRole on both "
        "(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html)",
    ),
)


class AmbiguousCallError(Exception):
    """A method name is an operation of several services the same function creates clients for."""


class UnknownFunctionError(KeyError):
    pass


# ------------------------------------------------------------------ the module graph
def _module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _project_packages() -> frozenset[str]:
    return frozenset({*SHARED_PACKAGES, *FUNCTION_PACKAGES_BY_FUNCTION.values()})


@functools.cache
def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _imported_modules(module: str, tree: ast.Module) -> Iterator[str]:
    package = module if _module_file(module) and str(_module_file(module)).endswith("__init__.py") else None
    parent = package or module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = parent.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            yield origin
            for alias in node.names:  # `from mm_adapters import aws` imports the module mm_adapters.aws
                yield f"{origin}.{alias.name}"


def module_graph(entry_module: str) -> tuple[str, ...]:
    """`entry_module` and every project module it imports, transitively (sorted)."""
    packages = _project_packages()
    seen: set[str] = set()
    pending = [entry_module]
    while pending:
        module = pending.pop()
        if module in seen or module.split(".")[0] not in packages:
            continue
        path = _module_file(module)
        if path is None:
            continue
        seen.add(module)
        # a package's __init__ runs when any of its modules is imported
        parent = module.rpartition(".")[0]
        if parent:
            pending.append(parent)
        pending.extend(_imported_modules(module, _parse(path)))
    return tuple(sorted(seen))


# ------------------------------------------------------------------ what can run
_Def = ast.FunctionDef | ast.AsyncFunctionDef


def _top_level_defs(tree: ast.Module | ast.ClassDef) -> Iterator[_Def]:
    """Functions and methods, classes nested in classes included (not nested functions: they run only when their
    enclosing function does)."""
    for node in tree.body:
        if isinstance(node, _Def):
            yield node
        elif isinstance(node, ast.ClassDef):
            yield from _top_level_defs(node)


def _bare_statements(tree: ast.Module) -> Iterator[ast.AST]:
    """Module and class bodies without their function bodies (decorators and defaults do run)."""
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.ClassDef):
            stack.extend(node.body)
            yield from node.decorator_list
        elif isinstance(node, _Def):
            yield from node.decorator_list
            yield node.args
        else:
            yield node


def _names_used(nodes: Iterable[ast.AST]) -> set[str]:
    names: set[str] = set()
    for root in nodes:
        for node in ast.walk(root):
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.alias):
                names.add((node.asname or node.name).split(".")[-1])
    return names


def reachable_code(modules: Iterable[str], handler: str) -> list[ast.AST]:
    """The code of `modules` that can run when `handler` ("module.function") is invoked, by name."""
    defs: dict[str, list[_Def]] = {}
    roots: list[ast.AST] = []
    for module in modules:
        path = _module_file(module)
        assert path is not None
        tree = _parse(path)
        roots.extend(_bare_statements(tree))
        for definition in _top_level_defs(tree):
            defs.setdefault(definition.name, []).append(definition)
    wanted = {handler.rpartition(".")[2]} | {name for name in defs if name.startswith("__")} | _names_used(roots)
    reached: set[str] = set()
    code: list[ast.AST] = list(roots)
    while wanted - reached:
        name = (wanted - reached).pop()
        reached.add(name)
        for definition in defs.get(name, ()):
            code.append(definition)
            wanted |= _names_used([definition])
    return code


# ------------------------------------------------------------------ calls
@functools.cache
def _operations(service: str) -> dict[str, str]:
    """snake_case method name -> operation name."""
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(operation): operation for operation in model.operation_names}


@functools.cache
def _signing_name(service: str) -> str:
    model = botocore.session.get_session().get_service_model(service)
    return str(model.signing_name or model.endpoint_prefix)


@functools.cache
def _waiter_operations(service: str) -> dict[str, str]:
    session = botocore.session.get_session()
    try:
        waiters = session.get_waiter_model(service)
    except Exception:  # a service without waiters
        return {}
    return {xform_name(name): waiters.get_waiter(name).operation for name in waiters.waiter_names}


def iam_action(service: str, operation: str) -> str:
    return IAM_ACTION_EXCEPTIONS.get((service, operation), f"{_signing_name(service)}:{operation}")


def iam_actions(service: str, operation: str) -> tuple[str, ...]:
    """Every IAM action a call of `operation` can be authorized under (several for a transaction)."""
    return ITEM_AUTHORIZED_OPERATIONS.get((service, operation), (iam_action(service, operation),))


def _literal(node: ast.Call) -> str | None:
    if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        return node.args[0].value
    for keyword in node.keywords:
        if keyword.arg == "service_name" and isinstance(keyword.value, ast.Constant):
            return str(keyword.value.value)
    return None


def _calls(code: Iterable[ast.AST]) -> list[ast.Call]:
    return [node for root in code for node in ast.walk(root) if isinstance(node, ast.Call)]


def services_created(code: Iterable[ast.AST]) -> frozenset[str]:
    services: set[str] = set()
    for call in _calls(code):
        if isinstance(call.func, ast.Attribute) and call.func.attr in _CLIENT_FACTORIES:
            service = _literal(call)
            if service is not None and service in botocore.session.get_session().get_available_services():
                services.add(service)
    return frozenset(services)


def calls_in(code: list[ast.AST], services: frozenset[str] | None = None) -> frozenset[AwsCall]:
    """The AWS calls `code` makes on clients of `services` (default: the clients `code` creates)."""
    services = services_created(code) if services is None else services
    by_method: dict[str, list[tuple[str, str]]] = {}
    for service in sorted(services):
        for method, operation in _operations(service).items():
            by_method.setdefault(method, []).append((service, operation))
    found: set[AwsCall] = set()
    for call in _calls(code):
        if not isinstance(call.func, ast.Attribute):
            continue
        method = call.func.attr
        if method in PROJECT_METHODS_NAMED_LIKE_OPERATIONS:
            continue
        if method in ("get_paginator", "get_waiter") and (name := _literal(call)) is not None:
            lookup = _operations if method == "get_paginator" else _waiter_operations
            candidates = [(service, lookup(service)[name]) for service in sorted(services) if name in lookup(service)]
        else:
            candidates = by_method.get(method, [])
        if len(candidates) > 1:
            raise AmbiguousCallError(
                f"line {call.lineno}: .{method}() is an operation of {sorted(s for s, _ in candidates)}: "
                "give it an explicit entry"
            )
        for service, operation in candidates:
            found.update(AwsCall(service, operation, action) for action in iam_actions(service, operation))
    return frozenset(found)


def function_modules(function: str) -> tuple[str, ...]:
    if function not in HANDLERS_BY_FUNCTION:
        raise UnknownFunctionError(f"unknown function {function!r} (known: {', '.join(HANDLERS_BY_FUNCTION)})")
    return module_graph(HANDLERS_BY_FUNCTION[function].rpartition(".")[0])


@functools.cache
def aws_calls(function: str) -> frozenset[AwsCall]:
    """Every AWS call `function`'s code can make, and the calls the service authorizes alongside them."""
    handler = HANDLERS_BY_FUNCTION.get(function)
    if handler is None:
        raise UnknownFunctionError(f"unknown function {function!r} (known: {', '.join(HANDLERS_BY_FUNCTION)})")
    code = reachable_code(function_modules(function), handler)
    implicit = {entry.call for entry in IMPLICIT_CALLS if entry.function == function}
    return calls_in(code) | frozenset(implicit)
