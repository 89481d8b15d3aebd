"""The certificate monitor's settings."""

from __future__ import annotations

from pydantic import Field

from mm_contracts.env_settings.base import EnvSettings


class CertificateMonitorSettings(EnvSettings):
    """The daily client-certificate expiry check (mTLS to MSK, decision 056)."""

    powertools_service_name: str = "certificate-monitor"
    # Secrets Manager secret `{"certificate": "<PEM chain, leaf first>", "privateKey": "<PEM>"}` (Lambda's format).
    client_certificate_secret_arn: str = Field(min_length=1)
    # The alarm's threshold, repeated in each log line so the log says how close the expiry is to it.
    expiry_warning_days: int = Field(default=30, ge=1, le=365)
