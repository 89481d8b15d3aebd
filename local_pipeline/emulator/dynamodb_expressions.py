"""Each update and condition expression parsed once: the fourth place the emulator reaches into moto, in its
DynamoDB process only (decision 115; the others: `dynamodb_transactions`, `dynamodb_responses`,
`dynamodb_queries`).

moto 5.2.5 parses an UpdateItem's `UpdateExpression` twice per call (`DynamoHandler.update_item` for its checks on
names and values, `DynamoDBBackend.update_item` again for the update), and once more per Update of a
TransactWriteItems: tokenizer and recursive-descent parser, ~20 % of an UpdateItem's CPU. The functions send a few
fixed expression strings (the names and values maps carry what changes), so `install()` makes
`UpdateExpressionParser.make` answer the AST it built before for the same string. That is safe because moto never
changes a parsed AST: the handler only reads it (`find_clauses`), and every validator works on its own
`deepcopy` of it (`Validator.__init__`, moto/dynamodb/parsing/validators.py), which is what the executor then
runs. A string that fails to parse is not kept, so it raises moto's error each time. At most `CACHE_LIMIT`
strings are kept (then the cache starts again).

Condition and filter expressions likewise (`ConditionExpressionParser.parse`, ~10 % of the process: each
UpdateItem's and transaction item's condition is parsed by the handler and again by the backend): the parse
resolves the names and values into moto's `Op` tree, so the key is the expression with its names and values maps
(as sorted JSON), and a hit also gives the parser the names and values it found (`expr_attr_names_found`, which
the handler checks for unused ones). moto's ops only read themselves when they evaluate an item (`expr`), so one
tree serves every call with that key.

Pinned like the others: nothing changes unless moto is exactly `PINNED_MOTO_VERSION`;
tests/local_pipeline/test_emulator_dynamodb_expressions.py compares wrapped and unwrapped answers.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
from typing import Any

from moto.dynamodb.comparisons import ConditionExpressionParser
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]  # untyped module

from local_pipeline.emulator.dynamodb_transactions import PINNED_MOTO_VERSION

CACHE_LIMIT = 1024
_WRAPPED = "_mm_parse_once_wrapper"
_log = logging.getLogger(__name__)
_parsed: dict[str, Any] = {}
_conditions: dict[tuple[str, str, str], tuple[Any, list[str], list[str]]] = {}


def _wrap(original_function: Any) -> classmethod[Any, Any, Any]:
    def make(cls: Any, expression_str: str) -> Any:
        ast = _parsed.get(expression_str)
        if ast is None:
            ast = original_function(cls, expression_str)
            if len(_parsed) >= CACHE_LIMIT:
                _parsed.clear()
            _parsed[expression_str] = ast
        return ast

    setattr(make, _WRAPPED, original_function)
    make.__doc__ = original_function.__doc__
    return classmethod(make)


def _wrap_condition(original: Any) -> Any:
    def parse(self: ConditionExpressionParser) -> Any:
        if not self.condition_expression:
            return original(self)
        try:
            key = (
                self.condition_expression,
                json.dumps(self.expression_attribute_names, sort_keys=True),
                json.dumps(self.expression_attribute_values, sort_keys=True),
            )
        except (TypeError, ValueError):
            return original(self)
        parsed = _conditions.get(key)
        if parsed is None:
            names_before, values_before = len(self.expr_attr_names_found), len(self.expr_attr_values_found)
            op = original(self)
            parsed = (op, self.expr_attr_names_found[names_before:], self.expr_attr_values_found[values_before:])
            if len(_conditions) >= CACHE_LIMIT:
                _conditions.clear()
            _conditions[key] = parsed
            return op
        self.expr_attr_names_found.extend(parsed[1])
        self.expr_attr_values_found.extend(parsed[2])
        return parsed[0]

    setattr(parse, _WRAPPED, original)
    parse.__doc__ = original.__doc__
    return parse


def _installed_function() -> Any:
    return UpdateExpressionParser.__dict__["make"].__func__


def install() -> bool:
    """Cache moto's update-expression parses (see the module docstring); False, changing nothing, on another moto
    version or when already installed."""
    if hasattr(_installed_function(), _WRAPPED):
        return False
    version = importlib.metadata.version("moto")
    if version != PINNED_MOTO_VERSION:
        _log.warning("moto %s is not %s: update expressions parsed as moto has it", version, PINNED_MOTO_VERSION)
        return False
    UpdateExpressionParser.make = _wrap(_installed_function())
    ConditionExpressionParser.parse = _wrap_condition(ConditionExpressionParser.parse)  # type: ignore[method-assign]
    return True


def uninstall() -> None:
    """moto's own parser back, the cache emptied (for tests)."""
    original = getattr(_installed_function(), _WRAPPED, None)
    if original is not None:
        UpdateExpressionParser.make = classmethod(original)
    original_parse = getattr(ConditionExpressionParser.parse, _WRAPPED, None)
    if original_parse is not None:
        ConditionExpressionParser.parse = original_parse  # type: ignore[method-assign]
    _parsed.clear()
    _conditions.clear()
