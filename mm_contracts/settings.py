"""One environment-config model per function.

A field `status_table_name` is read from the environment variable `STATUS_TABLE_NAME`. The CDK
constructs build each function's environment with `to_env()` of these same models, and a test holds
the synthesized environment and `env_var_names()` together, so the two cannot drift.

A missing or malformed variable fails at cold start with the variable's name (`SettingsError`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mm_contracts.models.phase import Platform

# Lambda retries a failed asynchronous invocation twice, about 1 and then 2 minutes later (decision 074).
LAMBDA_ASYNC_RETRY_WINDOW_SECONDS = 180


class SettingsError(RuntimeError):
    """The function's environment is incomplete or invalid; the message names the variables."""


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class EnvSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    environment_name: str = Field(min_length=1, max_length=16, pattern=r"^[a-z0-9-]+$")
    powertools_service_name: str
    powertools_metrics_namespace: str = "MMProcessor"
    powertools_log_level: str = "INFO"

    @classmethod
    def env_var_names(cls) -> frozenset[str]:
        return frozenset(name.upper() for name in cls.model_fields)

    @classmethod
    def required_env_var_names(cls) -> frozenset[str]:
        return frozenset(name.upper() for name, field in cls.model_fields.items() if field.is_required())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ
        values = {name: env[name.upper()] for name in cls.model_fields if name.upper() in env}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            problems = "; ".join(
                f"{str(err['loc'][0]).upper() if err['loc'] else cls.__name__}: {err['msg']}" for err in error.errors()
            )
            raise SettingsError(f"{cls.__name__} from environment: {problems}") from None

    def to_env(self) -> dict[str, str]:
        """The environment a deployment sets for this function (all fields, as strings)."""
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, tuple | list):
                text = ",".join(str(v) for v in value)
            elif isinstance(value, StrEnum):
                text = value.value
            else:
                text = str(value)
            env[name.upper()] = text
        return env


class TokenSource(StrEnum):
    STATIC_PARAMETER = "static_parameter"  # SSM SecureString holding a token (seed design)
    AUTH0_PROXY = "auth0_proxy"  # Topcoder's Auth0 proxy with client credentials from Secrets Manager


class TokenSettings(EnvSettings):
    """How a function obtains the Topcoder M2M token."""

    token_source: TokenSource = TokenSource.STATIC_PARAMETER
    token_parameter_name: str = "/mm-processor/auth0/token"
    auth0_proxy_url: str | None = None
    auth0_credentials_secret_arn: str | None = None  # JSON: client_id, client_secret, auth0_url, audience
    token_refresh_margin_seconds: int = Field(default=60, ge=0, le=3600)

    @model_validator(mode="after")
    def _auth0_complete(self) -> Self:
        if self.token_source is TokenSource.AUTH0_PROXY and not (
            self.auth0_proxy_url and self.auth0_credentials_secret_arn
        ):
            raise ValueError("TOKEN_SOURCE=auth0_proxy needs AUTH0_PROXY_URL and AUTH0_CREDENTIALS_SECRET_ARN")
        return self


class RouterSettings(EnvSettings):
    powertools_service_name: str = "router"
    sns_topic_arn: str = Field(min_length=1)
    challenge_table_name: str = Field(min_length=1)
    audit_queue_url: str = Field(min_length=1)
    # Kafka records already audited (decision 075); a mark outlives every re-delivery (max record age <= 7 d)
    # and the audit message it stands for (the audit queue keeps messages 14 days).
    audit_marks_table_name: str = Field(min_length=1)
    audit_mark_ttl_days: int = Field(default=14, ge=1, le=365)
    accepted_topics: tuple[str, ...] = ("submission.notification.create",)
    # The environment's platform profile (decision 084): v5, v6, or both during a migration. A record is read
    # as v6 when its topic is `marathonmatch.submission.received` (V6_SUBMISSION_TOPIC), else as v5.
    platforms: tuple[Platform, ...] = Field(default=(Platform.V5,), min_length=1)
    allowed_url_hosts: tuple[str, ...] = Field(min_length=1)  # exact host, or `.example.com` for subdomains
    max_record_bytes: int = Field(default=65_536, ge=1024, le=1_048_576)
    challenge_cache_seconds: int = Field(default=60, ge=0, le=3600)
    publish_max_attempts: int = Field(default=4, ge=1, le=10)

    _csv = field_validator("accepted_topics", "allowed_url_hosts", "platforms", mode="before")(_split_csv)


class ChallengeProcessorSettings(TokenSettings):
    powertools_service_name: str = "challenge-processor"
    challenge_id: str = Field(min_length=36, max_length=36)
    challenge_config_parameter: str = Field(min_length=1)
    config_cache_seconds: int = Field(default=300, ge=0, le=86_400)
    status_table_name: str = Field(min_length=1)
    status_ttl_days: int = Field(default=90, ge=1, le=3650)
    max_receive_count: int = Field(default=3, ge=1, le=1000)  # the queue's redrive maxReceiveCount
    launch_lease_seconds: int = Field(default=120, ge=10, le=3600)  # >= the function timeout
    # The router's allow list (same variable, same config field): the processor re-checks every URL before it
    # launches a scorer on it (mm_contracts.url_policy, decision 076).
    allowed_url_hosts: tuple[str, ...] = Field(min_length=1)
    # Where a run that will not be launched (a v6 skip, decision 086) is handed for its terminal report: the
    # completion function, invoked asynchronously with a "report due" event. None: the sweeper re-drives it.
    completion_function_name: str | None = Field(default=None, min_length=1)
    # Capacity (decisions 093, 094): the capacity table, the environment's caps parameter (cached this long),
    # and this challenge's own queue, where the runs of this challenge that the dispatcher admits are sent.
    capacity_table_name: str = Field(min_length=1)
    capacity_parameter_name: str = Field(min_length=1)
    challenge_queue_url: str = Field(min_length=1)
    capacity_cache_seconds: int = Field(default=60, ge=0, le=3600)

    _processor_csv = field_validator("allowed_url_hosts", mode="before")(_split_csv)


class CompletionSettings(TokenSettings):
    powertools_service_name: str = "completion"
    status_table_name: str = Field(min_length=1)
    status_ttl_days: int = Field(default=90, ge=1, le=3650)
    challenge_config_parameter_prefix: str = Field(min_length=1)  # `/mm-processor/challenges`
    config_cache_seconds: int = Field(default=300, ge=0, le=86_400)
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
    capacity_cache_seconds: int = Field(default=60, ge=0, le=3600)

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


class CertificateMonitorSettings(EnvSettings):
    """The daily client-certificate expiry check (mTLS to MSK, decision 056)."""

    powertools_service_name: str = "certificate-monitor"
    # Secrets Manager secret `{"certificate": "<PEM chain, leaf first>", "privateKey": "<PEM>"}` (Lambda's format).
    client_certificate_secret_arn: str = Field(min_length=1)
    # The alarm's threshold, repeated in each log line so the log says how close the expiry is to it.
    expiry_warning_days: int = Field(default=30, ge=1, le=365)


class ScorerTokenRefresherSettings(EnvSettings):
    """Keeps a Topcoder M2M token for scorer tasks in an SSM SecureString (token source auth0_proxy, decision 091).

    Topcoder's ecs-runner reads `ACCESS_TOKEN`, which a task definition can only take from a parameter or secret
    (`secrets`, never overrides); with the Auth0 proxy no parameter holds a token, so this function keeps one.
    """

    powertools_service_name: str = "scorer-token-refresher"
    auth0_proxy_url: str = Field(min_length=1)
    auth0_credentials_secret_arn: str = Field(min_length=1)  # JSON: client_id, client_secret, auth0_url, audience
    scorer_token_parameter_name: str = Field(min_length=1)  # `<ssmPrefix>/auth0/scorer-token`
    # The key PutParameter encrypts with: the AWS managed key unless the environment names one of its own.
    scorer_token_kms_key_id: str = Field(default="alias/aws/ssm", min_length=1)
    # A stored token that expires within this long is replaced: a task started now must keep a valid token for
    # its whole run (ECS reads the parameter once, at start), and the token ages one schedule interval per run.
    refresh_margin_seconds: int = Field(ge=60, le=2 * 86_400)
