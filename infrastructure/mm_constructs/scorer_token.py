"""The scorer-token refresher (token source auth0_proxy with `token.scorerTokenParameter`, decision 091): a
scheduled function that keeps a Topcoder M2M token in `<ssmPrefix>/auth0/scorer-token`, and its alarm.

Topcoder's ecs-runner reads ACCESS_TOKEN, which reaches a task only through its task definition's `secrets`
(decision 087). The parameter is not a resource of this stack: CloudFormation cannot create a SecureString
(AWS::SSM::Parameter takes String and StringList only), so the function creates it with PutParameter on its
first run and overwrites it when it nears expiry. Every run publishes `ScorerTokenSecondsToExpiry`; the alarm
fires when the minimum over two intervals falls to the refresh margin, and a period without a value (failing,
unscheduled, no permission) counts as breaching.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from constructs import Construct

from infrastructure.mm_constructs.alarms import AlarmFactory
from infrastructure.mm_constructs.arns import Arns
from infrastructure.mm_constructs.completion import token_statement
from infrastructure.mm_constructs.functions import FunctionKit, FunctionSpec
from infrastructure.mm_constructs.scheduled_check import CheckAlarm, CheckSchedule, build_scheduled_check
from infrastructure.wiring import SCORER_TOKEN_REFRESHER_HANDLER, WiringPlan
from mm_contracts.metric_names import Metric

# Two runs per alarm period: one late run does not leave a period without a value.
RUNS_PER_ALARM_PERIOD = 2


class ScorerTokenRefresher(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, plan: WiringPlan, kit: FunctionKit, alarms: AlarmFactory
    ) -> None:
        super().__init__(scope, construct_id)
        names = plan.names
        config = plan.config
        settings = plan.scorer_token_refresher_settings()
        arns = Arns.of(config)
        self.parameter_arn = arns.ssm_parameter(settings.scorer_token_parameter_name)
        margin = settings.refresh_margin_seconds
        check = build_scheduled_check(
            self,
            "Refresher",
            kit=kit,
            alarms=alarms,
            spec=FunctionSpec(
                function_name=names.scorer_token_refresher_function,
                asset="scorer-token-refresher",
                handler=SCORER_TOKEN_REFRESHER_HANDLER,
                sizing=config.scorer_token_refresher,  # reserved 1: one run at a time
                environment=settings.to_env(),
                description="Keeps the scorer tasks' Topcoder M2M token (ACCESS_TOKEN) fresh in SSM",
            ),
            statements=(
                # Read, then create or overwrite: the one parameter. Under the AWS managed key (alias/aws/ssm) the
                # key policy admits any principal of the account through SSM, so no kms statement is needed.
                iam.PolicyStatement(actions=["ssm:GetParameter", "ssm:PutParameter"], resources=[self.parameter_arn]),
                token_statement(plan, arns),  # the Auth0 credentials, as the completion reads them
            ),
            schedule=CheckSchedule(
                rule_name=names.scorer_token_refresh_schedule,
                description="Refresh the scorer tasks' M2M token parameter when it nears expiry",
                rate=Duration.minutes(config.token.scorer_token_refresh_minutes),
                why_nothing_waits=(
                    "A missed refresh is repeated by the next scheduled run; a period without its metric raises "
                    "the scorer-token alarm"
                ),
                why_no_function_dlq=(
                    "A failed scheduled refresh has nothing to keep: the next run repeats it, and the failure's "
                    "metric (or its absence) raises the scorer-token alarm"
                ),
            ),
            alarm=CheckAlarm(
                metric=Metric.SCORER_TOKEN_SECONDS_TO_EXPIRY,
                service=settings.powertools_service_name,
                period=Duration.minutes(RUNS_PER_ALARM_PERIOD * config.token.scorer_token_refresh_minutes),
                threshold=margin,
                inclusive=True,
                description=(
                    f"the scorer token in {settings.scorer_token_parameter_name} expires within {margin} s (a "
                    "task started now could outlive it), or the refresher failed or reported nothing: read the "
                    "refresher's log (decision 091)"
                ),
                next_step=(
                    f"{alarms.cli('health')}, then the refresher's log group "
                    f"/aws/lambda/{names.scorer_token_refresher_function}; after the fix invoke "
                    f"{names.scorer_token_refresher_function} once to refresh now. Still on while the proxy's tokens "
                    "live shorter than the margin: shorten the runner phases' timeouts or ask for longer-lived tokens"
                ),
                health_label="scorer token refresher",
            ),
        )
        self.function = check.function
        self.schedule = check.schedule
        self.expiry_alarm = check.expiry_alarm
