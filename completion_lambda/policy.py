"""The timings and bounds the completion function follows (`CompletionPolicy`, from `CompletionSettings`)."""

from __future__ import annotations

from dataclasses import dataclass

from mm_contracts.settings import CompletionSettings

SQS_MAX_DELAY_SECONDS = 900  # SQS DelaySeconds maximum


@dataclass(frozen=True)
class CompletionPolicy:
    """The timings and bounds the service follows (from `CompletionSettings`)."""

    report_lease_seconds: int = 120
    report_slow_commit_seconds: int = 60
    report_check_delay_seconds: int = 600
    max_start_relaunches: int = 2
    start_relaunch_delay_seconds: int = 60
    challenge_queue_name_template: str | None = None  # None: start failures are never relaunched
    relaunch_check_seconds: int = 900

    @classmethod
    def from_settings(cls, settings: CompletionSettings) -> CompletionPolicy:
        return cls(
            report_lease_seconds=settings.report_lease_seconds,
            report_slow_commit_seconds=settings.report_slow_commit_seconds,
            report_check_delay_seconds=settings.report_check_delay_seconds,
            max_start_relaunches=settings.max_start_relaunches,
            start_relaunch_delay_seconds=settings.start_relaunch_delay_seconds,
            challenge_queue_name_template=settings.challenge_queue_name_template,
            relaunch_check_seconds=settings.relaunch_check_seconds,
        )

    def relaunch_delay(self, relaunch_number: int) -> int:
        """60 s, 120 s, 240 s, ... capped at SQS's 900 s (relaunch_number >= 1)."""
        return min(SQS_MAX_DELAY_SECONDS, self.start_relaunch_delay_seconds * 2 ** max(0, relaunch_number - 1))
