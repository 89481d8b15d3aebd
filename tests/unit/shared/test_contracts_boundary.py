"""The contracts are data only (decision 101): no module of `mm_contracts` imports an I/O library or an adapter."""

from __future__ import annotations

import ast
from pathlib import Path

import mm_contracts

FORBIDDEN = ("boto3", "botocore", "requests", "urllib3", "aws_lambda_powertools", "mm_adapters", "mm_capacity")
CONTRACTS = Path(mm_contracts.__file__).resolve().parent


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_contract_module_imports_io_or_adapters() -> None:
    offenders = {
        str(path.relative_to(CONTRACTS)): sorted(
            name for name in _imported_modules(path) if name.split(".")[0] in FORBIDDEN
        )
        for path in sorted(CONTRACTS.rglob("*.py"))
    }

    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_scan_sees_the_contracts() -> None:
    modules = {str(path.relative_to(CONTRACTS)) for path in CONTRACTS.rglob("*.py")}

    assert {"ports.py", "settings.py", "models/ledger.py", "models/kafka_failure.py"} <= modules
