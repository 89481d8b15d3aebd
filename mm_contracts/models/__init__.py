"""pydantic models for every shape that crosses a stage boundary."""

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
