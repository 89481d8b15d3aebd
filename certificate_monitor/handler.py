"""Certificate monitor Lambda (EventBridge schedule): read the Kafka client-certificate secret, publish its days to
expiry (EMF metric `ClientCertificateDaysToExpiry`), log the expiry date. Never logs the secret.

The alarm fires below `kafka.certificateExpiryWarningDays` and also when the metric is missing, so a monitor that
fails (unreadable secret, bad PEM, no permission) never looks healthy; a failure also raises (Errors alarm).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from certificate_monitor.expiry import CertificateExpiry, certificate_expiry
from mm_adapters import aws
from mm_contracts.metric_names import ENVIRONMENT_DIMENSION, SERVICE_DIMENSION, Metric
from mm_contracts.settings import CertificateMonitorSettings

logger = Logger()
tracer = Tracer()


@functools.cache
def settings() -> CertificateMonitorSettings:
    return CertificateMonitorSettings.from_env()


def publish_days_to_expiry(settings: CertificateMonitorSettings, expiry: CertificateExpiry) -> None:
    """One EMF document: dimensions Environment and service (what the alarm names), value in days."""
    with single_metric(
        name=Metric.CLIENT_CERTIFICATE_DAYS_TO_EXPIRY.value,
        unit=MetricUnit.NoUnit,
        value=expiry.days_to_expiry,
        namespace=settings.powertools_metrics_namespace,
        default_dimensions={
            ENVIRONMENT_DIMENSION: settings.environment_name,
            SERVICE_DIMENSION: settings.powertools_service_name,
        },
    ):
        pass


def check(settings: CertificateMonitorSettings, *, secrets: Any, now: datetime) -> CertificateExpiry:
    secret = secrets.get_secret_value(SecretId=settings.client_certificate_secret_arn)
    expiry = certificate_expiry(secret["SecretString"], now=now)
    publish_days_to_expiry(settings, expiry)
    fields = expiry.log_fields(settings.expiry_warning_days)
    if expiry.days_to_expiry < settings.expiry_warning_days:
        logger.warning("Kafka client certificate expires soon: rotate the secret", extra=fields)
    else:
        logger.info("Kafka client certificate checked", extra=fields)
    return expiry


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = settings()
    expiry = check(config, secrets=aws.client("secretsmanager"), now=datetime.now(tz=UTC))
    return {"notValidAfter": expiry.not_valid_after.isoformat(), "daysToExpiry": round(expiry.days_to_expiry, 2)}
