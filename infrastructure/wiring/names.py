"""Physical resource names ("mm-<env>-..."), the handlers as Lambda resolves them, and service names."""

from __future__ import annotations

from dataclasses import dataclass

from infrastructure.config import EnvironmentConfigError

# The sweeper's Powertools service name: its metrics carry it as the `service` dimension (the capacity alarms).
SWEEPER_SERVICE_NAME = "timeout-sweeper"

# Filled in by the completion function: the challenge queues' name pattern it relaunches through (decision 072).
CHALLENGE_ID_PLACEHOLDER = "{challenge_id}"

# The handlers, as Lambda resolves them inside each function's asset.
ROUTER_HANDLER = "router_lambda.handler.handler"
CHALLENGE_HANDLER = "challenge_lambda.handler.handler"
COMPLETION_HANDLER = "completion_lambda.handler.handler"
SWEEPER_HANDLER = "sweeper_lambda.handler.handler"
CERTIFICATE_MONITOR_HANDLER = "certificate_monitor.handler.handler"
SCORER_TOKEN_REFRESHER_HANDLER = "scorer_token_refresher.handler.handler"
# S3 bucket names are global and at most 63 characters (decision 055).
MAX_BUCKET_NAME_LENGTH = 63


@dataclass(frozen=True)
class ResourceNames:
    """Physical names: predictable for operators ("mm-<env>-..."), and the emulator uses the same ones."""

    environment: str

    def _name(self, suffix: str) -> str:
        return f"mm-{self.environment}-{suffix}"

    @property
    def submissions_topic(self) -> str:
        return self._name("submissions")

    @property
    def challenge_table(self) -> str:
        return self._name("challenges")

    @property
    def status_table(self) -> str:
        """One item per run (submission, phase), keyed by `runId` (decision 084). A new name: the v5-only table
        (`mm-<env>-submission-status`, keyed by `submissionId`) cannot change its key in place."""
        return self._name("runs")

    @property
    def legacy_status_table(self) -> str:
        """The status table before decision 084: kept (retainData) for operators, no longer written."""
        return self._name("submission-status")

    @property
    def capacity_table(self) -> str:
        """Slots, waiting queues, member rounds and the RunTask pace (decision 097): a table of its own."""
        return self._name("capacity")

    @property
    def audit_queue(self) -> str:
        return self._name("router-audit")

    @property
    def audit_marks_table(self) -> str:
        """Kafka records the router already audited (decision 075); owned by the router construct."""
        return self._name("router-audit-marks")

    def router_failure_bucket(self, account: str, region: str) -> str:
        """The Kafka on-failure bucket (decision 055): global names, so account and region are part of it."""
        name = self._name(f"router-failures-{account}-{region}")
        if len(name) > MAX_BUCKET_NAME_LENGTH:
            raise EnvironmentConfigError(f"bucket name {name!r} is longer than {MAX_BUCKET_NAME_LENGTH} characters")
        return name

    @property
    def certificate_monitor_function(self) -> str:
        return self._name("certificate-monitor")

    @property
    def certificate_monitor_schedule(self) -> str:
        return self._name("certificate-check")

    @property
    def scorer_token_refresher_function(self) -> str:
        return self._name("scorer-token-refresher")

    @property
    def scorer_token_refresh_schedule(self) -> str:
        return self._name("scorer-token-refresh")

    @property
    def completion_dlq(self) -> str:
        return self._name("completion-dlq")

    @property
    def fanout_dlq(self) -> str:
        """SNS->SQS deliveries that failed (e.g. a queue's key policy broke): one DLQ for all subscriptions."""
        return self._name("fanout-dlq")

    @property
    def alarm_topic(self) -> str:
        return self._name("alarms")

    @property
    def dashboard(self) -> str:
        return self._name("pipeline")

    @property
    def router_function(self) -> str:
        return self._name("router")

    @property
    def completion_function(self) -> str:
        return self._name("completion")

    @property
    def sweeper_function(self) -> str:
        return self._name("timeout-sweeper")

    @property
    def completion_rule(self) -> str:
        return self._name("task-stopped")

    @property
    def sweeper_schedule(self) -> str:
        return self._name("timeout-sweep")

    @property
    def parameter_change_rule(self) -> str:
        """The rule invoking the sweeper on Parameter Store changes of the caps and challenge configs (121)."""
        return f"{self.sweeper_schedule}-ssm-change"

    def challenge_queue(self, challenge_id: str) -> str:
        return self._name(f"ch-{challenge_id}")  # <= 80 chars

    def challenge_dlq(self, challenge_id: str) -> str:
        return self._name(f"ch-{challenge_id}-dlq")

    def challenge_function(self, challenge_id: str) -> str:
        return self._name(f"ch-{challenge_id}")  # <= 64 chars with a 16-char environment
