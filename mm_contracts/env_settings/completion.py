"""The completion function's settings."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from mm_contracts.env_settings.base import LAMBDA_ASYNC_RETRY_WINDOW_SECONDS
from mm_contracts.env_settings.token import TokenSettings


class CompletionSettings(TokenSettings):
    powertools_service_name: str = "completion"
    status_table_name: str = Field(min_length=1)
    status_ttl_days: int = Field(default=90, ge=1, le=3650)
    challenge_config_parameter_prefix: str = Field(min_length=1)  # `/mm-processor/challenges`
    config_cache_seconds: int = Field(default=300, ge=0, le=86_400)  # the TTL without an observed version (121)
    submission_api_url: str | None = Field(default=None, min_length=1)  # v5 reviews: https://api.topcoder-dev.com/v5
    review_api_url: str | None = Field(default=None, min_length=1)  # v6 summations: https://api.topcoder-dev.com/v6
    api_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    api_max_retries: int = Field(default=2, ge=0, le=5)
    # >= the function timeout; with the slow-commit window inside the async retry window (validated below)
    report_lease_seconds: int = Field(default=120, ge=10, le=3600)
    # After an ambiguous POST (5xx, read timeout, dropped connection) a slow commit can still land: a later
    # attempt looks for the review only once this long has passed since then (decision 074).
    report_slow_commit_seconds: int = Field(default=60, ge=0, le=900)
    # A required report is re-driven by the sweeper if still unfinished this long after the outcome was recorded.
    report_check_delay_seconds: int = Field(default=600, ge=60, le=86_400)
    # Relaunch after a transient TaskFailedToStart (decision 072): how many times, the first SQS delay (doubled
    # each time, capped at SQS's 900 s), the challenge queue's name (`{challenge_id}` filled in; None: no
    # relaunch), and when the sweeper looks at a LAUNCH_FAILED item whose relaunch never arrived.
    max_start_relaunches: int = Field(default=2, ge=0, le=10)
    start_relaunch_delay_seconds: int = Field(default=60, ge=0, le=900)
    challenge_queue_name_template: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]*\{challenge_id\}[A-Za-z0-9_-]*$"
    )
    relaunch_check_seconds: int = Field(default=900, ge=60, le=86_400)
    # Capacity (decisions 093, 094): a final outcome frees its slot and admits waiting runs environment-wide,
    # sending each to its challenge queue (`challenge_queue_name_template`).
    capacity_table_name: str = Field(min_length=1)
    capacity_parameter_name: str = Field(min_length=1)
    capacity_cache_seconds: int = Field(default=60, ge=0, le=3600)  # the TTL without an observed version (121)

    @model_validator(mode="after")
    def _a_report_target(self) -> Self:
        if not (self.submission_api_url or self.review_api_url):
            raise ValueError("SUBMISSION_API_URL (v5) or REVIEW_API_URL (v6) is required")
        return self

    @model_validator(mode="after")
    def _report_retry_fits_the_async_retries(self) -> Self:
        # A crashed holder's lease must expire, and the slow-commit window after it pass, before Lambda's last
        # async retry (+60 s, then +120 s): else every retry defers and the event waits for the sweeper.
        if self.report_lease_seconds + self.report_slow_commit_seconds > LAMBDA_ASYNC_RETRY_WINDOW_SECONDS:
            raise ValueError(
                f"REPORT_LEASE_SECONDS + REPORT_SLOW_COMMIT_SECONDS must be <= {LAMBDA_ASYNC_RETRY_WINDOW_SECONDS} "
                "(Lambda retries an async invocation after about 60 s and 120 s more)"
            )
        return self
