"""An operator's audit entry is named without the audit models (issue 13): the functions that write one in a run's
history take its names from the pydantic-free `mm_contracts.models.audit_names`, which `audit` re-exports
(`tests/unit/test_cold_imports.py` holds the handlers to it)."""

from __future__ import annotations

from mm_contracts.models import audit, audit_names
from tests.unit.test_cold_imports import imported_packages


def test_the_audit_module_re_exports_the_very_same_names() -> None:
    for name in audit_names.__all__:
        assert getattr(audit, name) is getattr(audit_names, name)


def test_the_audit_names_load_no_pydantic() -> None:
    # When the names are imported in a fresh interpreter
    packages = imported_packages("mm_contracts.models.audit_names")
    # Then no model library is loaded (the check saw a real import: the contracts are there)
    assert "pydantic" not in packages
    assert "mm_contracts" in packages
