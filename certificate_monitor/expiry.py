"""How long the Kafka client certificate has left: pure code over the secret's text (no AWS, no clock).

The secret has the shape Lambda's event source mapping reads for CLIENT_CERTIFICATE_TLS_AUTH:
`{"certificate": "<PEM: client certificate, then intermediates>", "privateKey": "<PEM>", ...}`. Only the
leaf (the first certificate) matters: it is the one the brokers check, and an intermediate that expires
earlier would make the leaf fail too, so the earliest `not_valid_after` of the chain is reported.
Nothing here returns or raises with the key or the certificate text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
SECONDS_PER_DAY = 86_400


class CertificateSecretError(ValueError):
    """The secret is not a usable client-certificate secret; the message never quotes it."""


class ClientCertificateSecret(BaseModel):
    """The secret's JSON; the key stays a SecretStr so no log or repr can show it."""

    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)

    certificate: SecretStr = Field(min_length=1)
    private_key: SecretStr = Field(alias="privateKey", min_length=1)


@dataclass(frozen=True)
class CertificateExpiry:
    not_valid_after: datetime  # UTC, of the certificate in the chain that expires first
    days_to_expiry: float  # negative once expired
    serial_number: str  # hex, identifies which certificate is meant without quoting it
    chain_length: int

    def log_fields(self, warning_days: int) -> dict[str, object]:
        return {
            "not_valid_after": self.not_valid_after.isoformat(),
            "days_to_expiry": round(self.days_to_expiry, 2),
            "serial_number": self.serial_number,
            "chain_length": self.chain_length,
            "warning_days": warning_days,
        }


def parse_secret(secret_string: str) -> ClientCertificateSecret:
    try:
        return ClientCertificateSecret.model_validate_json(secret_string)
    except ValidationError as error:
        fields = sorted({str(e["loc"][0]) if e["loc"] else "secret" for e in error.errors()})
        raise CertificateSecretError(f"client certificate secret: missing or invalid {', '.join(fields)}") from None


def certificate_expiry(secret_string: str, *, now: datetime) -> CertificateExpiry:
    """The earliest expiry in the secret's certificate chain, relative to `now` (timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    pem = parse_secret(secret_string).certificate.get_secret_value()
    if PEM_BEGIN not in pem:
        raise CertificateSecretError("client certificate secret: `certificate` holds no PEM certificate")
    try:
        chain = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise CertificateSecretError("client certificate secret: `certificate` is not a valid PEM chain") from None
    first_to_expire = min(chain, key=lambda certificate: certificate.not_valid_after_utc)
    not_after = first_to_expire.not_valid_after_utc
    return CertificateExpiry(
        not_valid_after=not_after,
        days_to_expiry=(not_after - now).total_seconds() / SECONDS_PER_DAY,
        serial_number=format(chain[0].serial_number, "x"),
        chain_length=len(chain),
    )
