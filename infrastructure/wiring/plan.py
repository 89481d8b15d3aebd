"""`WiringPlan`: the resources (`ResourcePlan`) plus each function's environment, built from its settings model."""

from __future__ import annotations

from typing import Any

from infrastructure.config import ChallengeSettings, EnvironmentConfigError
from infrastructure.wiring.names import CHALLENGE_ID_PLACEHOLDER, SWEEPER_SERVICE_NAME
from infrastructure.wiring.resources import (
    LEASE_MARGIN_SECONDS,
    MAX_RECEIVE_COUNT,
    SWEEPER_MARGIN_SECONDS,
    VISIBILITY_TIMEOUT_FACTOR,
    ResourcePlan,
    ResourceRefs,
)
from mm_contracts.metric_names import METRICS_NAMESPACE
from mm_contracts.models.challenge import ScorerEnvironment
from mm_contracts.models.phase import Platform
from mm_contracts.names import (
    challenge_config_parameter_prefix,
    scorer_token_parameter_name,
    static_token_parameter_name,
)
from mm_contracts.settings import (
    LAMBDA_ASYNC_RETRY_WINDOW_SECONDS,
    CertificateMonitorSettings,
    ChallengeProcessorSettings,
    CompletionSettings,
    RouterSettings,
    ScorerTokenRefresherSettings,
    TimeoutSweeperSettings,
    TokenSettings,
    TokenSource,
)

# The scorer token must outlive the longest run by this much more (the task's start, image pull, clock skew).
SCORER_TOKEN_SLACK_SECONDS = 300


class WiringPlan(ResourcePlan):
    """Everything derived from one EnvironmentConfig: its resources and each function's environment."""

    # ------------------------------------------------------------------ function environments
    def _token_fields(self) -> dict[str, Any]:
        token = self.config.token
        return {
            "token_source": token.source,
            "token_parameter_name": static_token_parameter_name(self.config.ssm_prefix),
            "auth0_proxy_url": token.auth0_proxy_url,
            "auth0_credentials_secret_arn": token.auth0_credentials_secret_arn,
        }

    def _common(self, service: str) -> dict[str, Any]:
        return {
            "environment_name": self.config.environment,
            "powertools_service_name": service,
            "powertools_metrics_namespace": METRICS_NAMESPACE,
        }

    def router_settings(self, refs: ResourceRefs) -> RouterSettings:
        return RouterSettings(
            **self._common("router"),
            sns_topic_arn=refs.sns_topic_arn,
            challenge_table_name=refs.challenge_table_name,
            audit_queue_url=refs.audit_queue_url,
            audit_marks_table_name=self.names.audit_marks_table,
            accepted_topics=self.config.accepted_topics,
            platforms=self.config.platforms,
            allowed_url_hosts=self.config.allowed_url_hosts,
        )

    def _capacity_fields(self, refs: ResourceRefs) -> dict[str, Any]:
        return {
            "capacity_table_name": refs.capacity_table_name or self.names.capacity_table,
            "capacity_parameter_name": self.capacity_parameter(),
        }

    def challenge_settings(
        self, challenge: ChallengeSettings, refs: ResourceRefs, *, queue_url: str | None = None
    ) -> ChallengeProcessorSettings:
        """`queue_url`: the challenge's own queue (admitted runs of its challenge are sent there); default the URL
        SQS gives the planned name."""
        return ChallengeProcessorSettings(
            **self._common("challenge-processor"),
            **self._token_fields(),
            **self._capacity_fields(refs),
            challenge_queue_url=queue_url or self.challenge_queue_url(challenge.challenge_id),
            challenge_id=challenge.challenge_id,
            challenge_config_parameter=self.challenge_config_parameter(challenge.challenge_id),
            status_table_name=refs.status_table_name,
            status_ttl_days=self.config.status_ttl_days,
            max_receive_count=MAX_RECEIVE_COUNT,
            launch_lease_seconds=self.config.challenge_processor.timeout_seconds + LEASE_MARGIN_SECONDS,
            allowed_url_hosts=self.config.allowed_url_hosts,  # the router's list: one policy, one list
            # A v6 run that is skipped (no task) is handed to the completion function for its terminal summation;
            # a v5 challenge never skips a run this way, so it gets neither the name nor the grant.
            completion_function_name=(self.names.completion_function if challenge.served_by is Platform.V6 else None),
        )

    def completion_settings(self, refs: ResourceRefs) -> CompletionSettings:
        return CompletionSettings(
            **self._common("completion"),
            **self._token_fields(),
            **self._capacity_fields(refs),
            status_table_name=refs.status_table_name,
            status_ttl_days=self.config.status_ttl_days,
            challenge_config_parameter_prefix=challenge_config_parameter_prefix(self.config.ssm_prefix),
            submission_api_url=self.config.submission_api_url,
            review_api_url=self.config.review_api_url,
            report_lease_seconds=self.report_lease_seconds(),
            # A transient start failure is relaunched through its challenge queue (decision 072).
            challenge_queue_name_template=self.names.challenge_queue(CHALLENGE_ID_PLACEHOLDER),
        )

    def sweeper_settings(self, refs: ResourceRefs) -> TimeoutSweeperSettings:
        processor_timeout = self.config.challenge_processor.timeout_seconds
        launch_lease = processor_timeout + LEASE_MARGIN_SECONDS
        visibility = VISIBILITY_TIMEOUT_FACTOR * processor_timeout
        return TimeoutSweeperSettings(
            **self._common(SWEEPER_SERVICE_NAME),
            **self._capacity_fields(refs),
            # The sweeper's dispatch admits runs of any challenge (the safety net, decision 096): it reads their
            # configs and sends to their queues, as the completion function does.
            challenge_config_parameter_prefix=challenge_config_parameter_prefix(self.config.ssm_prefix),
            challenge_queue_name_template=self.names.challenge_queue(CHALLENGE_ID_PLACEHOLDER),
            status_table_name=refs.status_table_name,
            completion_function_name=self.names.completion_function,
            ecs_cluster_arns=(self.config.ecs.cluster_arn,),
            # An untracked task younger than a launch lease may still be recorded by its launch (decision 071).
            orphan_settle_seconds=launch_lease + SWEEPER_MARGIN_SECONDS,
            # After its lease, a LAUNCHING item's message can come back at most maxReceiveCount more times, one
            # visibility timeout apart; after that it is in the DLQ (decision 080).
            launch_stuck_after_seconds=visibility * MAX_RECEIVE_COUNT + SWEEPER_MARGIN_SECONDS,
        )

    def certificate_monitor_settings(self) -> CertificateMonitorSettings:
        """Only for `kafka.authentication = mtls` (the function exists only then)."""
        kafka = self.config.kafka
        if kafka.client_certificate_secret_arn is None:
            raise EnvironmentConfigError("the certificate monitor needs kafka.clientCertificateSecretArn (mtls)")
        return CertificateMonitorSettings(
            **self._common("certificate-monitor"),
            client_certificate_secret_arn=kafka.client_certificate_secret_arn,
            expiry_warning_days=kafka.certificate_expiry_warning_days,
        )

    # ------------------------------------------------------------------ scorer token (decision 091)
    def scorer_token_parameter(self) -> str | None:
        """The SSM parameter a scorer task definition references as ACCESS_TOKEN: the refresher's with the Auth0
        proxy (`token.scorerTokenParameter`), else the static token parameter; None when there is none.

        An Auth0-proxy environment whose topcoder_ecs_runner challenges would have no parameter is refused when
        its config loads (`EnvironmentConfig._scorer_token_serves_the_runners`).
        """
        token = self.config.token
        if token.scorer_token_parameter:
            return scorer_token_parameter_name(self.config.ssm_prefix)
        if token.source is TokenSource.STATIC_PARAMETER:
            return static_token_parameter_name(self.config.ssm_prefix)
        return None

    def scorer_token_refresh_margin_seconds(self) -> int:
        """A stored scorer token is replaced once it expires within this long: the longest phase timeout a
        task that reads it can run (topcoder_ecs_runner challenges; every challenge if none is), plus one schedule
        interval (the token ages that much between two checks), plus a slack for the task's start."""
        challenges = [
            c for c in self.config.challenges if c.scorer_environment is ScorerEnvironment.TOPCODER_ECS_RUNNER
        ] or list(self.config.challenges)
        longest = max(
            config.phase_timeout(phase.phase)
            for config in (self.config.challenge_config(c) for c in challenges)
            for phase in config.effective_phases
        )
        return longest + self.config.token.scorer_token_refresh_minutes * 60 + SCORER_TOKEN_SLACK_SECONDS

    def scorer_token_refresher_settings(self) -> ScorerTokenRefresherSettings:
        """Only with `token.scorerTokenParameter` (the function exists only then)."""
        token = self.config.token
        parameter = self.scorer_token_parameter()
        if not token.scorer_token_parameter or parameter is None:
            raise EnvironmentConfigError("the scorer-token refresher needs token.scorerTokenParameter: true")
        assert token.auth0_proxy_url is not None  # auth0_proxy: TokenConfig requires both
        assert token.auth0_credentials_secret_arn is not None
        return ScorerTokenRefresherSettings(
            **self._common("scorer-token-refresher"),
            auth0_proxy_url=token.auth0_proxy_url,
            auth0_credentials_secret_arn=token.auth0_credentials_secret_arn,
            scorer_token_parameter_name=parameter,
            refresh_margin_seconds=self.scorer_token_refresh_margin_seconds(),
        )

    def report_lease_seconds(self) -> int:
        """The completion function's report lease, validated against Lambda's async retry window (decision 080).

        A lease that outlives the last async retry means a crash after the POST leaves the report REPORTING and
        the event in the DLQ: the sweeper re-drives it, but only minutes later. Refused at synth, by name.
        """
        lease = self.config.completion.timeout_seconds + LEASE_MARGIN_SECONDS
        # A retry after an ambiguous POST also waits out the slow-commit window before it looks (decision 074).
        window = CompletionSettings.model_fields["report_slow_commit_seconds"].default
        if lease + window > LAMBDA_ASYNC_RETRY_WINDOW_SECONDS:
            raise EnvironmentConfigError(
                f"completion.timeoutSeconds={self.config.completion.timeout_seconds} gives a report lease of {lease} s "
                f"(timeout + {LEASE_MARGIN_SECONDS} s); with the {window} s slow-commit window that is longer than "
                f"Lambda's async retry window ({LAMBDA_ASYNC_RETRY_WINDOW_SECONDS} s: retries after about 60 s and "
                "120 s more): a crashed report would outlive every retry. Lower completion.timeoutSeconds to at most "
                f"{LAMBDA_ASYNC_RETRY_WINDOW_SECONDS - LEASE_MARGIN_SECONDS - window}"
            )
        return lease


def token_settings_names() -> frozenset[str]:
    return TokenSettings.env_var_names()
