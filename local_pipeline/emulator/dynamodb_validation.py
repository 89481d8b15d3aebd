"""Update-expression validation without moto's per-node overheads: the sixth place the emulator reaches into moto,
in its DynamoDB process only (decision 115; the others: `dynamodb_transactions`, `dynamodb_responses`,
`dynamodb_queries`, `dynamodb_expressions`, `sqs_receive`).

moto 5.2.5 validates every UpdateItem and every Update of a transaction with `UpdateExpressionValidator`: it
deep-copies the parsed AST (`Validator.__init__`), then runs ten processors over the copy, each a depth-first
traversal (`DepthFirstTraverser.traverse_node_recursively`, moto/dynamodb/parsing/ast_nodes.py). For every node
of every traversal moto builds the processor's map twice (`nodes_to_be_processed()` and `process()` each call
`_processing_map()`, a new dict of bound methods) and tests it with `isinstance` against abstract classes
(`ABCMeta.__instancecheck__`): ~30 % of the DynamoDB process's CPU, and the generic `copy.deepcopy` of the AST
another ~12 % (py-spy, 250 submissions). Neither depends on the item; only the processors' own work does.

`install()` changes three things, all answer-preserving:
- `DepthFirstTraverser.traverse` builds the map once per traversal and decides per node type (not per node) which
  processor applies, by moto's own rule (the first map key the node is an instance of; `isinstance` of an
  instance of a class depends only on its class, and moto registers no virtual subclasses); the walk, the order of
  children, `pre_processing_of_child` and the replacement of processed nodes in their parent are moto's. A
  traverser that overrides `traverse_node_recursively`, `process` or `nodes_to_be_processed` keeps moto's walk.
- the validators' `deepcopy` copies AST nodes and lists directly (a new instance of the node's class with its
  `__dict__` copied, what `copy.deepcopy` does for a class without `__deepcopy__`, `__reduce__` or
  `__setstate__` of its own) and hands everything else (moto's `DynamoType`, which has its own `__deepcopy__`) to
  `copy.deepcopy` with the same memo, so shared references and parent links come out as deepcopy makes them. A
  parsed AST (an `UpdateExpression` root, kept per string by `dynamodb_expressions`) made only of such nodes,
  lists and atoms is pickled once and each copy is `pickle.loads` of those bytes: the same reconstruction (the
  class's `__new__`, then its `__dict__`, shared references and parent links through pickle's memo) in C, at
  about half the cost of the walk (in transactions the AST copy was the largest single cost).
- the first three of the ten processors (`ActionCountValidator`, `OverlappingPathsValidator`,
  `UpdateHashRangeKeyValidator`) read only the AST, the names map and the table's key attributes, never the item,
  and change nothing (each returns the node it was given, or raises); run on every node that is an
  `UpdateExpression`, the first two call `find_clauses` on each, O(n^2) in the AST's size (~15 % of an
  UpdateItem). `UpdateExpressionValidator.validate` skips them when they passed before for the same parsed AST
  (the object `dynamodb_expressions` keeps per string, which moto never changes), names map and key attributes. A
  failure is never remembered, so moto raises its error every time.

Pinned like the others: nothing changes unless moto is exactly `PINNED_MOTO_VERSION`;
tests/local_pipeline/test_emulator_dynamodb_validation.py compares wrapped and unwrapped answers.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import logging
import pickle
import weakref
from collections.abc import Callable
from typing import Any

from moto.dynamodb.parsing import validators
from moto.dynamodb.parsing.ast_nodes import (  # type: ignore[attr-defined]  # untyped
    DepthFirstTraverser,
    Node,
    UpdateExpression,
)

from local_pipeline.emulator.dynamodb_transactions import PINNED_MOTO_VERSION

_WRAPPED = "_mm_validation_wrapper"
_log = logging.getLogger(__name__)
_NOT_A_NODE = object()
_UNDECIDED = object()
# Types `copy.deepcopy` returns as they are (its `_deepcopy_atomic`).
_ATOMIC = frozenset({type(None), bool, int, float, str, bytes})
_OWN_WALK = ("traverse_node_recursively", "process", "nodes_to_be_processed")
_copied_directly: dict[type, bool] = {}
_PASSED_PER_AST_LIMIT = 64
_AST_ONLY_CHECKS = (
    validators.ActionCountValidator,
    validators.OverlappingPathsValidator,
    validators.UpdateHashRangeKeyValidator,
)
# parsed AST -> the (names map, key attributes) its AST-only checks passed with; weak, so a dropped AST goes too
_passed_checks: weakref.WeakKeyDictionary[Any, set[tuple[str, tuple[str, ...]]]] = weakref.WeakKeyDictionary()
# parsed AST -> its pickle (None: not made of plain nodes, lists and atoms only, so copied by the walk)
_pickled: weakref.WeakKeyDictionary[Any, bytes | None] = weakref.WeakKeyDictionary()


def _keeps_motos_walk(traverser: Any) -> bool:
    kind = type(traverser)
    return any(getattr(kind, name) is not getattr(DepthFirstTraverser, name) for name in _OWN_WALK)


class _Walk:
    """One traversal as moto's `traverse_node_recursively` makes it, the processor's map built once and the
    processor of a node decided once per node type."""

    def __init__(self, traverser: Any) -> None:
        self.processing = traverser._processing_map()
        self.kinds = tuple(self.processing)
        own_hook = type(traverser).pre_processing_of_child is not DepthFirstTraverser.pre_processing_of_child
        self.pre_processing_of_child = traverser.pre_processing_of_child if own_hook else None
        self.decided: dict[type, Any] = {}

    def _action_for(self, node: Any) -> Any:
        if not isinstance(node, Node):
            return _NOT_A_NODE
        if not isinstance(node, self.kinds):
            return None
        # moto's `process`: the first class of the map the node is an instance of
        return next(processor for kind, processor in self.processing.items() if isinstance(node, kind))

    def visit(self, node: Any, child_id: int = -1) -> Any:
        action = self.decided.get(type(node), _UNDECIDED)
        if action is _UNDECIDED:
            action = self.decided[type(node)] = self._action_for(node)
        if action is _NOT_A_NODE:
            return node
        parent_node = node.parent
        for i, child_node in enumerate(node.children or ()):
            if self.pre_processing_of_child is not None:
                self.pre_processing_of_child(node, i)
            self.visit(child_node, i)
        if action is not None:
            node = action(node)
            node.parent = parent_node
            if parent_node:
                parent_node.children[child_id] = node
        return node


def _wrap_traverse(original: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def traverse(self: Any, node: Any) -> Any:
        if _keeps_motos_walk(self):
            return original(self, node)
        return _Walk(self).visit(node)

    setattr(traverse, _WRAPPED, original)
    traverse.__doc__ = original.__doc__
    return traverse


def _plain_instance(kind: type) -> bool:
    """A class `copy.deepcopy` copies as a new instance with its `__dict__` deep-copied (nothing of its own)."""
    known = _copied_directly.get(kind)
    if known is None:
        known = _copied_directly[kind] = (
            issubclass(kind, Node)
            and not hasattr(kind, "__deepcopy__")
            and not hasattr(kind, "__setstate__")
            and kind.__reduce_ex__ is object.__reduce_ex__
            and kind.__reduce__ is object.__reduce__
            and getattr(kind, "__getstate__", object.__getstate__) is object.__getstate__
            and "__slots__" not in kind.__dict__
            and copy._deepcopy_dispatch.get(kind) is None  # type: ignore[attr-defined]
        )
    return known


def _plain_tree(root: Any) -> bool:
    """Only plain nodes (see `_plain_instance`), lists and atoms: what pickle rebuilds as deepcopy would."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind in _ATOMIC or id(value) in seen:
            continue
        seen.add(id(value))
        if kind is list:
            stack.extend(value)
        elif _plain_instance(kind):
            stack.extend(value.__dict__.values())
        else:
            return False
    return True


def _pickle_of(ast: Any) -> bytes | None:
    try:
        return _pickled[ast]
    except KeyError:
        pass
    blob = pickle.dumps(ast, pickle.HIGHEST_PROTOCOL) if _plain_tree(ast) else None
    _pickled[ast] = blob
    return blob


def tree_deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """`copy.deepcopy` for moto's update-expression ASTs, without its generic dispatch per node."""
    if memo is None:
        if type(value) is UpdateExpression:
            blob = _pickle_of(value)
            if blob is not None:  # made in this process from moto's own parsed AST, never outside data
                return pickle.loads(blob)  # noqa: S301
        memo = {}
    kind = type(value)
    if kind in _ATOMIC:
        return value
    found = memo.get(id(value), _UNDECIDED)
    if found is not _UNDECIDED:
        return found
    if kind is list:
        copied_list: list[Any] = []
        memo[id(value)] = copied_list
        copied_list.extend(tree_deepcopy(item, memo) for item in value)
        _keep_alive(value, memo)
        return copied_list
    if _plain_instance(kind):
        copied = object.__new__(kind)
        memo[id(value)] = copied
        state = {name: tree_deepcopy(member, memo) for name, member in value.__dict__.items()}
        copied.__dict__.update(state)
        _keep_alive(value, memo)
        return copied
    return copy.deepcopy(value, memo)


def _keep_alive(value: Any, memo: dict[int, Any]) -> None:
    """What `copy.deepcopy` does: the originals stay referenced from the memo, so their ids are not reused."""
    memo.setdefault(id(memo), []).append(value)


def _wrap_validator_init(original: Callable[..., None]) -> Callable[..., None]:
    def __init__(self: Any, expression: Any, *args: Any, **kwargs: Any) -> None:
        original(self, expression, *args, **kwargs)
        self._mm_parsed_ast = expression

    setattr(__init__, _WRAPPED, original)
    return __init__


def _checks_key(validator: Any) -> tuple[str, tuple[str, ...]] | None:
    try:
        names = json.dumps(validator.expression_attribute_names, sort_keys=True)
        return names, tuple(validator.table.table_key_attrs)
    except (TypeError, ValueError, AttributeError):
        return None


def _wrap_validate(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def validate(self: Any) -> Any:
        ast = getattr(self, "_mm_parsed_ast", None)
        processors = list(self.processors)
        key = _checks_key(self)
        if ast is None or key is None or tuple(type(p) for p in processors[:3]) != _AST_ONLY_CHECKS:
            return original(self)
        try:
            passed = _passed_checks.setdefault(ast, set())
        except TypeError:  # not weakly referable
            return original(self)
        node = self.node_to_validate
        if key in passed:
            processors = processors[3:]
        else:
            for processor in processors[:3]:
                node = processor.traverse(node)
            if len(passed) >= _PASSED_PER_AST_LIMIT:
                passed.clear()
            passed.add(key)  # only reached when none of the three raised
            processors = processors[3:]
        for processor in processors:
            node = processor.traverse(node)
        return node

    setattr(validate, _WRAPPED, original)
    validate.__doc__ = original.__doc__
    return validate


def install() -> bool:
    """Validate update expressions without moto's per-node map building and generic AST copy (see the module
    docstring); False, changing nothing, on another moto version or when already installed."""
    if hasattr(DepthFirstTraverser.traverse, _WRAPPED):
        return False
    version = importlib.metadata.version("moto")
    if version != PINNED_MOTO_VERSION:
        _log.warning("moto %s is not %s: update expressions validated as moto has it", version, PINNED_MOTO_VERSION)
        return False
    DepthFirstTraverser.traverse = _wrap_traverse(DepthFirstTraverser.traverse)
    setattr(tree_deepcopy, _WRAPPED, validators.deepcopy)
    validators.deepcopy = tree_deepcopy  # type: ignore[assignment]
    checked: Any = validators.UpdateExpressionValidator
    checked.__init__ = _wrap_validator_init(checked.__init__)
    checked.validate = _wrap_validate(checked.validate)
    return True


def uninstall() -> None:
    """moto's own traversal and copy back (for tests)."""
    original = getattr(DepthFirstTraverser.traverse, _WRAPPED, None)
    if original is not None:
        DepthFirstTraverser.traverse = original
    if validators.deepcopy is tree_deepcopy:
        validators.deepcopy = getattr(tree_deepcopy, _WRAPPED, copy.deepcopy)
    checked: Any = validators.UpdateExpressionValidator
    for name in ("__init__", "validate"):
        original_method = getattr(checked.__dict__.get(name), _WRAPPED, None)
        if original_method is not None:
            if original_method is getattr(validators.Validator, name):
                delattr(checked, name)  # it was the base class's
            else:
                setattr(checked, name, original_method)
    _passed_checks.clear()
    _pickled.clear()
