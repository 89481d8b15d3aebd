"""pydantic models for every shape that crosses a stage boundary.

The names below load on first use (PEP 562 `__getattr__`), not when any submodule is imported: importing
`mm_contracts.models.phase` runs this file first, and building every model here would make each function pay for
models it never uses (decision 112). Importers name the submodule (`mm_contracts.models.lifecycle`); this
package-level index serves the tests and tools that prefer one import line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mm_contracts.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from mm_contracts.models.audit import AuditDisposition, AuditRecord
    from mm_contracts.models.base import ContractModel
    from mm_contracts.models.challenge import ChallengeConfig, ChallengeRecord, ScorerCredentialsMode
    from mm_contracts.models.lifecycle import (
        FINAL_STATES,
        LifecycleEvent,
        LifecycleRecord,
        ReportStatus,
        SubmissionState,
    )
    from mm_contracts.models.outcome import Outcome, OutcomeCode, TestStatus
    from mm_contracts.models.routed import KafkaCoordinates, RoutedSubmission
    from mm_contracts.models.task import TaskEnv, TaskTag

# Name -> the submodule that defines it.
_SUBMODULE = {
    "AuditDisposition": "audit",
    "AuditRecord": "audit",
    "ContractModel": "base",
    "ChallengeConfig": "challenge",
    "ChallengeRecord": "challenge",
    "ScorerCredentialsMode": "challenge",
    "FINAL_STATES": "lifecycle",
    "LifecycleEvent": "lifecycle",
    "LifecycleRecord": "lifecycle",
    "ReportStatus": "lifecycle",
    "SubmissionState": "lifecycle",
    "Outcome": "outcome",
    "OutcomeCode": "outcome",
    "TestStatus": "outcome",
    "KafkaCoordinates": "routed",
    "RoutedSubmission": "routed",
    "TaskEnv": "task",
    "TaskTag": "task",
}


__getattr__ = lazy_exports(__name__, {name: f"{__name__}.{module}" for name, module in _SUBMODULE.items()})


__all__ = [
    "FINAL_STATES",
    "AuditDisposition",
    "AuditRecord",
    "ChallengeConfig",
    "ChallengeRecord",
    "ContractModel",
    "KafkaCoordinates",
    "LifecycleEvent",
    "LifecycleRecord",
    "Outcome",
    "OutcomeCode",
    "ReportStatus",
    "RoutedSubmission",
    "ScorerCredentialsMode",
    "SubmissionState",
    "TaskEnv",
    "TaskTag",
    "TestStatus",
]
