"""The Kafka client-certificate expiry monitor (mTLS only, decision 056): a scheduled function and its alarm.

Every 12 hours the function reads the certificate secret and publishes `ClientCertificateDaysToExpiry`. The alarm
looks at the day's minimum: below `kafka.certificateExpiryWarningDays` it fires, and a day without a value (the
monitor failing, unscheduled or unable to read the secret) counts as breaching, so silence never looks healthy.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from constructs import Construct

from infrastructure.mm_constructs.alarms import AlarmFactory
from infrastructure.mm_constructs.functions import FunctionKit, FunctionSpec
from infrastructure.mm_constructs.router import secret_decrypt_statement
from infrastructure.mm_constructs.scheduled_check import CheckAlarm, CheckSchedule, build_scheduled_check
from infrastructure.wiring import CERTIFICATE_MONITOR_HANDLER, WiringPlan
from mm_contracts.metric_names import Metric

# Two runs per alarm period: one late or failed run does not leave the day without a value.
CHECK_INTERVAL = Duration.hours(12)
ALARM_PERIOD = Duration.days(1)


class CertificateMonitor(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, plan: WiringPlan, kit: FunctionKit, alarms: AlarmFactory
    ) -> None:
        super().__init__(scope, construct_id)
        names = plan.names
        config = plan.config
        settings = plan.certificate_monitor_settings()
        secret_arn = settings.client_certificate_secret_arn
        check = build_scheduled_check(
            self,
            "Monitor",
            kit=kit,
            alarms=alarms,
            spec=FunctionSpec(
                function_name=names.certificate_monitor_function,
                asset="certificate-monitor",
                handler=CERTIFICATE_MONITOR_HANDLER,
                sizing=config.certificate_monitor,
                environment=settings.to_env(),
                description="Days until the Kafka mTLS client certificate expires -> CloudWatch",
            ),
            statements=(
                iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[secret_arn]),
                secret_decrypt_statement(config, secret_arn),
            ),
            schedule=CheckSchedule(
                rule_name=names.certificate_monitor_schedule,
                description="Check the Kafka client certificate's expiry",
                rate=CHECK_INTERVAL,
                why_nothing_waits=(
                    "A missed check is repeated by the next one; a day without any value raises the expiry alarm"
                ),
                why_no_function_dlq=(
                    "A failed scheduled check has nothing to keep: the next run repeats it, and the missing metric "
                    "raises the expiry alarm"
                ),
            ),
            alarm=CheckAlarm(
                metric=Metric.CLIENT_CERTIFICATE_DAYS_TO_EXPIRY,
                service=settings.powertools_service_name,
                period=ALARM_PERIOD,
                threshold=settings.expiry_warning_days,
                inclusive=False,
                description=(
                    f"the Kafka client certificate expires in fewer than {settings.expiry_warning_days} days, or "
                    "the certificate monitor reported nothing for a day: rotate the secret or fix the monitor "
                    "(decision 056)"
                ),
                next_step=(
                    f"{alarms.cli('health')}; expiring: put the renewed certificate chain and key as a new value of "
                    f"the secret {secret_arn} (the next check, or an invoke of {names.certificate_monitor_function}, "
                    "reports the new expiry); nothing reported: the monitor's log group "
                    f"/aws/lambda/{names.certificate_monitor_function}"
                ),
                health_label="certificate monitor",
            ),
        )
        self.function = check.function
        self.schedule = check.schedule
        self.expiry_alarm = check.expiry_alarm
