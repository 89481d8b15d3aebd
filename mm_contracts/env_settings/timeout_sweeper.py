"""The timeout sweeper's settings."""

from __future__ import annotations

from pydantic import Field, field_validator

from mm_contracts.env_settings.base import EnvSettings, _split_csv


class TimeoutSweeperSettings(EnvSettings):
    powertools_service_name: str = "timeout-sweeper"
    status_table_name: str = Field(min_length=1)
    max_stops_per_run: int = Field(default=100, ge=1, le=1000)
    # Reconciling lost STOPPED events (decision 008): the function a synthetic event is sent to, how long
    # after a stop (or an earlier attempt) the event has to be processed, and how often to try.
    completion_function_name: str = Field(min_length=1)
    reconcile_grace_seconds: int = Field(default=900, ge=1, le=86_400)
    max_reconcile_attempts: int = Field(default=3, ge=1, le=20)
    # Describe before stopping (decision 073): a LAUNCHED task is described at least this often, and a task
    # ECS describes STOPPED longer ago than the event grace is reconciled at once (its event was lost).
    liveness_check_seconds: int = Field(default=900, ge=60, le=86_400)
    event_grace_seconds: int = Field(default=300, ge=1, le=3600)
    # Orphan sweep (decision 071): the clusters whose running tasks of ours are listed, how many tasks one run
    # looks at, how old an untracked task must be before it is stopped (> the launch lease: its launch may still
    # be recording it), and how far past its own MM_TIMEOUT_SECONDS any task of ours may run.
    ecs_cluster_arns: tuple[str, ...] = ()
    max_tasks_listed_per_run: int = Field(default=1000, ge=1, le=10_000)
    orphan_settle_seconds: int = Field(default=180, ge=1, le=86_400)
    overrun_grace_seconds: int = Field(default=900, ge=0, le=86_400)
    # An adopted task that names no timeout and whose item has none gets the longest a challenge may have.
    fallback_timeout_seconds: int = Field(default=86_400, ge=30, le=86_400)
    # Stuck items (decision 080): a LAUNCHING lease expired longer ago than SQS can still redeliver its message
    # (visibility x maxReceiveCount + margin) means the message is in the DLQ; an unfinished report is re-driven
    # every report_retry_interval_seconds, at most max_report_retries times.
    launch_stuck_after_seconds: int = Field(default=600, ge=1, le=14 * 86_400)
    report_retry_interval_seconds: int = Field(default=900, ge=60, le=86_400)
    max_report_retries: int = Field(default=3, ge=1, le=20)
    # Capacity (decisions 093, 094): the safety net. Each run reconciles slots with the running tasks, re-sends
    # admitted runs whose message never arrived and admits waiting runs (configs read like the completion's).
    capacity_table_name: str = Field(min_length=1)
    capacity_parameter_name: str = Field(min_length=1)
    capacity_cache_seconds: int = Field(default=60, ge=0, le=3600)
    challenge_config_parameter_prefix: str = Field(min_length=1)
    config_cache_seconds: int = Field(default=300, ge=0, le=86_400)
    challenge_queue_name_template: str = Field(pattern=r"^[A-Za-z0-9_-]*\{challenge_id\}[A-Za-z0-9_-]*$")
    # A slot held for an ambiguous dead-lettered run with no running task is freed only after this long.
    slot_reconcile_grace_seconds: int = Field(default=900, ge=60, le=86_400)

    _clusters = field_validator("ecs_cluster_arns", mode="before")(_split_csv)
