"""The client-certificate expiry monitor (decision 056): days to expiry from the secret, published as EMF, logged
without the secret; a bad or unreadable secret fails loudly (the alarm also fires on the missing metric)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certificate_monitor import handler as monitor
from certificate_monitor import wiring
from certificate_monitor.check import check
from certificate_monitor.expiry import CertificateSecretError, certificate_expiry
from certificate_monitor.observability import logger
from mm_adapters import aws as aws_clients
from mm_contracts.settings import CertificateMonitorSettings
from tests.builders import FakeLambdaContext

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SECRET_NAME = "mm-processor/test/kafka-client-certificate"


def certificate(days_left: float, *, name: str = "mm-processor-test", now: datetime = NOW) -> tuple[str, str]:
    """A self-signed certificate expiring `days_left` days after `now`, and its key (PKCS #8 PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=365))
        .not_valid_after(now + timedelta(days=days_left))
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return pem, key_pem


def secret_string(chain: list[str], key: str) -> str:
    return json.dumps({"certificate": "".join(chain), "privateKey": key})


@pytest.mark.parametrize("days_left", [365, 30.5, 29.5, 1, -3])
def test_days_to_expiry_follow_the_leaf_certificate(days_left: float) -> None:
    pem, key = certificate(days_left)
    expiry = certificate_expiry(secret_string([pem], key), now=NOW)
    assert expiry.days_to_expiry == pytest.approx(days_left, abs=1e-6)
    assert expiry.not_valid_after == NOW + timedelta(days=days_left)
    assert expiry.chain_length == 1


def test_an_intermediate_that_expires_first_decides() -> None:
    leaf, key = certificate(200)
    intermediate, _ = certificate(12, name="intermediate")
    expiry = certificate_expiry(secret_string([leaf, intermediate], key), now=NOW)
    assert expiry.days_to_expiry == pytest.approx(12)
    assert expiry.chain_length == 2


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("not json", "missing or invalid secret"),
        (json.dumps({"privateKey": "k"}), "missing or invalid certificate"),
        (json.dumps({"certificate": "c"}), "missing or invalid privateKey"),
        (json.dumps({"certificate": "hello", "privateKey": "-----BEGIN PRIVATE KEY-----x"}), "holds no PEM"),
        (
            json.dumps(
                {"certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", "privateKey": "k"}
            ),
            "not a valid PEM chain",
        ),
    ],
)
def test_a_malformed_secret_is_refused_without_quoting_it(secret: str, problem: str) -> None:
    with pytest.raises(CertificateSecretError, match=problem) as raised:
        certificate_expiry(secret, now=NOW)
    assert "BEGIN" not in str(raised.value)
    assert "AAAA" not in str(raised.value)


# ------------------------------------------------------------------ handler, against moto Secrets Manager
def store_secret(text: str) -> str:
    return str(aws_clients.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=text)["ARN"])


def settings_for(arn: str) -> CertificateMonitorSettings:
    return CertificateMonitorSettings(
        environment_name="test", client_certificate_secret_arn=arn, expiry_warning_days=30
    )


def run(settings: CertificateMonitorSettings) -> Any:
    """One check with the function's own sink (EMF on stdout) and moto's Secrets Manager."""
    deps = wiring.CertificateMonitorDependencies(settings)
    return check(settings, secrets=deps.secrets, metrics=deps.metrics, now=NOW)


def emf_documents(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]


def log_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The monitor's log lines as Powertools writes them (its JSON formatter over the captured records)."""
    formatter = logger.registered_formatter
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == logger.name]


@pytest.mark.parametrize(("days_left", "level"), [(90, "INFO"), (10, "WARNING")])
def test_the_monitor_publishes_days_to_expiry_and_logs_the_date_never_the_secret(
    aws: None, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, days_left: int, level: str
) -> None:
    pem, key = certificate(days_left)
    arn = store_secret(secret_string([pem], key))

    expiry = run(settings_for(arn))

    assert expiry.days_to_expiry == pytest.approx(days_left)
    output = capsys.readouterr().out
    (document,) = emf_documents(output)
    (metric,) = document["_aws"]["CloudWatchMetrics"]
    assert metric["Namespace"] == "MMProcessor"
    assert metric["Metrics"] == [{"Name": "ClientCertificateDaysToExpiry", "Unit": "None"}]
    assert metric["Dimensions"] == [["Environment", "service"]]  # what the alarm names
    assert document["Environment"] == "test"
    assert document["ClientCertificateDaysToExpiry"] == [pytest.approx(days_left)]
    (line,) = log_lines(caplog)
    assert line["level"] == level
    assert line["not_valid_after"] == (NOW + timedelta(days=days_left)).isoformat()
    text = output + json.dumps(log_lines(caplog))
    for secret_part in (pem.splitlines()[1], key.splitlines()[1], "BEGIN CERTIFICATE", "PRIVATE KEY"):
        assert secret_part not in text


def test_an_unusable_secret_fails_the_run_and_publishes_nothing(
    aws: None, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    _, key = certificate(90)
    arn = store_secret(json.dumps({"certificate": "garbage", "privateKey": key}))
    with pytest.raises(CertificateSecretError):
        run(settings_for(arn))
    output = capsys.readouterr().out
    assert emf_documents(output) == []  # the missing metric is what the alarm catches
    assert key.splitlines()[1] not in output + json.dumps(log_lines(caplog))


def test_the_handler_reads_its_settings_and_returns_the_expiry(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pem, key = certificate(45, now=datetime.now(tz=UTC))
    arn = store_secret(secret_string([pem], key))
    for name, value in settings_for(arn).to_env().items():
        monkeypatch.setenv(name, value)
    wiring.use_dependencies(None)

    context = FakeLambdaContext(
        function_name="mm-test-certificate-monitor",
        memory_limit_in_mb=128,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:mm-test-certificate-monitor",
        aws_request_id="request-1",
    )

    try:
        result = monitor.handler({}, context)
    finally:
        wiring.use_dependencies(None)
    assert 44 < result["daysToExpiry"] <= 45  # the handler reads the real clock
    output = capsys.readouterr().out
    assert len(emf_documents(output)) == 1
    assert key.splitlines()[1] not in output
    assert pem.splitlines()[1] not in output
