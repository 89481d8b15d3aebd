"""An ECS Task State Change, the completion function's common invocation, is no "Run Report Due" event, so its cold
start builds none of that event's models (issue 13): it tells one by the pydantic-free
`mm_contracts.models.report_due_names` and imports `mm_contracts.models.report_due` only to parse one
(`tests/unit/test_cold_imports.py` holds the import; `test_reporting_v6.py` parses a report-due event)."""

from __future__ import annotations

from mm_contracts.models import report_due, report_due_names


def test_the_report_due_module_re_exports_the_very_same_names() -> None:
    for name in report_due_names.__all__:
        assert getattr(report_due, name) is getattr(report_due_names, name)
