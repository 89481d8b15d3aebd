"""One run of the certificate monitor: read the Kafka client-certificate secret, publish its days to expiry (the
gauge `ClientCertificateDaysToExpiry`, dimensions Environment and service: what the alarm names), log the expiry
date. Never logs the secret; an unusable secret raises before anything is published (the missing metric alarms).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from certificate_monitor.expiry import CertificateExpiry, certificate_expiry
from certificate_monitor.observability import logger
from mm_contracts.metric_names import Metric
from mm_contracts.ports import MetricsSink
from mm_contracts.settings import CertificateMonitorSettings


def check(
    settings: CertificateMonitorSettings, *, secrets: Any, metrics: MetricsSink, now: datetime
) -> CertificateExpiry:
    secret = secrets.get_secret_value(SecretId=settings.client_certificate_secret_arn)
    expiry = certificate_expiry(secret["SecretString"], now=now)
    metrics.gauge(Metric.CLIENT_CERTIFICATE_DAYS_TO_EXPIRY, expiry.days_to_expiry)
    fields = expiry.log_fields(settings.expiry_warning_days)
    if expiry.days_to_expiry < settings.expiry_warning_days:
        logger.warning("Kafka client certificate expires soon: rotate the secret", extra=fields)
    else:
        logger.info("Kafka client certificate checked", extra=fields)
    return expiry
