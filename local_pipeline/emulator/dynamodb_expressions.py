"""Each update expression parsed once: the fourth place the emulator reaches into moto, in its DynamoDB process only
(decision 115; the others: `dynamodb_transactions`, `dynamodb_responses`, `dynamodb_queries`).

moto 5.2.5 parses an UpdateItem's `UpdateExpression` twice per call (`DynamoHandler.update_item` for its checks on
names and values, `DynamoDBBackend.update_item` again for the update), and once more per Update of a
TransactWriteItems: tokenizer and recursive-descent parser, ~20 % of an UpdateItem's CPU. The functions send a few
fixed expression strings (the names and values maps carry what changes), so `install()` makes
`UpdateExpressionParser.make` answer the AST it built before for the same string. That is safe because moto never
changes a parsed AST: the handler only reads it (`find_clauses`), and every validator works on its own
`deepcopy` of it (`Validator.__init__`, moto/dynamodb/parsing/validators.py), which is what the executor then
runs. A string that fails to parse is not kept, so it raises moto's error each time. At most `CACHE_LIMIT`
strings are kept (then the cache starts again).

Pinned like the others: nothing changes unless moto is exactly `PINNED_MOTO_VERSION`;
tests/local_pipeline/test_emulator_dynamodb_expressions.py compares wrapped and unwrapped answers.
"""

from __future__ import annotations

import importlib.metadata
import logging
from typing import Any

from moto.dynamodb.parsing.expressions import UpdateExpressionParser

from local_pipeline.emulator.dynamodb_transactions import PINNED_MOTO_VERSION

CACHE_LIMIT = 1024
_WRAPPED = "_mm_parse_once_wrapper"
_log = logging.getLogger(__name__)
_parsed: dict[str, Any] = {}


def _wrap(original_function: Any) -> classmethod[Any, Any, Any]:
    def make(cls: type[UpdateExpressionParser], expression_str: str) -> Any:
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
    UpdateExpressionParser.make = _wrap(_installed_function())  # type: ignore[method-assign,assignment]
    return True


def uninstall() -> None:
    """moto's own parser back, the cache emptied (for tests)."""
    original = getattr(_installed_function(), _WRAPPED, None)
    if original is not None:
        UpdateExpressionParser.make = classmethod(original)  # type: ignore[method-assign,assignment]
    _parsed.clear()
