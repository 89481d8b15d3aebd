"""What one cold start of a function costs, as a statement: the cold start benchmark times it in a fresh interpreter,
and `tests/unit/test_first_call_imports.py` holds it to what a handler's first invocation really loads.

A sample is the handler's import, then what every function's first call imports to call AWS (the handlers build
botocore clients through `mm_adapters.aws`; a no-op when the handler imported it already), then the build of every
pydantic model class the import loaded that is not built yet. So a model whose schema build is deferred
(`defer_build`, a forward reference) or a client module imported late is counted, never a saving (decision 112).

Here, not in `benchmarks/`, because a test reads it and tests import no benchmark (pyproject's import contracts).
"""

from __future__ import annotations

# The packages the functions' assets ship: a model defined in one of them is ours to build.
RUNTIME_PACKAGES = (
    "mm_contracts",
    "mm_adapters",
    "mm_capacity",
    "router_lambda",
    "challenge_lambda",
    "completion_lambda",
    "sweeper_lambda",
    "certificate_monitor",
    "scorer_token_refresher",
)
FIRST_CALL_IMPORT = "import mm_adapters.aws"
BUILD_LOADED_MODELS = f"""\
import sys as _sys
if "pydantic" in _sys.modules:
    import pydantic as _pydantic

    def _subclasses(model):
        for subclass in model.__subclasses__():
            yield subclass
            yield from _subclasses(subclass)

    for _model in set(_subclasses(_pydantic.BaseModel)):
        if _model.__module__.partition(".")[0] in {RUNTIME_PACKAGES!r} and not _model.__pydantic_complete__:
            _model.model_rebuild()
"""


def sample_statement(handler_module: str) -> str:
    """The statement one cold-start sample of `handler_module` runs."""
    return f"import {handler_module}\n{FIRST_CALL_IMPORT}\n{BUILD_LOADED_MODELS}"
