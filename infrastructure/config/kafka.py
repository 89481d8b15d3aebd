"""The MSK source of the router: cluster, topic, batching, authentication and its secrets (decision 054)."""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import Field, model_validator

from infrastructure.config.base import ARN, ConfigModel
from mm_contracts.models.phase import V6_SUBMISSION_TOPIC, Platform
from mm_contracts.names import DEFAULT_SUBMISSION_TOPIC


class KafkaAuthentication(StrEnum):
    """How the router's event source mapping authenticates to MSK (decision 054)."""

    IAM = "iam"
    SASL_SCRAM_512 = "sasl_scram_512"
    MTLS = "mtls"  # client certificate from Secrets Manager (CLIENT_CERTIFICATE_TLS_AUTH)


class StartingPosition(StrEnum):
    LATEST = "LATEST"
    TRIM_HORIZON = "TRIM_HORIZON"


# A complete secret ARN (with Secrets Manager's 6-character suffix): grants and KMS conditions match it exactly.
_SECRET_SUFFIX = r"[A-Za-z0-9/_+=.@-]*-[A-Za-z0-9]{6}$"


class KafkaSettings(ConfigModel):
    """The MSK source. Secrets for `sasl_scram_512` and `mtls` live in Secrets Manager, per environment, under a
    customer-managed key (`secretKmsKeyArn`): MSK refuses SCRAM secrets under the AWS-managed key, and the
    router's role can only be granted kms:Decrypt on a key we name. Naming convention (decision 054):
    SCRAM `AmazonMSK_mm-processor-<env>` (MSK requires the `AmazonMSK_` prefix), client certificate
    `mm-processor/<env>/kafka-client-certificate` (JSON `certificate` chain + `privateKey`, PEM).
    """

    cluster_arn: str = Field(pattern=ARN + "kafka:")
    # The v5 topic (the seed design's KAFKA_TOPIC). The v6 topic is the platform's own name (V6_SUBMISSION_TOPIC):
    # the router reads a record as v6 by that topic, so it is not a setting (decision 084).
    topic: str = DEFAULT_SUBMISSION_TOPIC
    # The v5 mapping's consumer group (default mm-processor-<env>); the v6 mapping joins `<group>-v6`: every
    # Kafka event source needs a consumer group of its own.
    consumer_group_id: str | None = None
    batch_size: int = Field(default=100, ge=1, le=10_000)
    batching_window_seconds: int = Field(default=1, ge=0, le=300)
    starting_position: StartingPosition = StartingPosition.LATEST
    authentication: KafkaAuthentication = KafkaAuthentication.IAM
    sasl_scram_secret_arn: str | None = Field(
        default=None, pattern=ARN + r"secretsmanager:[a-z0-9-]+:\d{12}:secret:AmazonMSK_" + _SECRET_SUFFIX
    )
    client_certificate_secret_arn: str | None = Field(
        default=None, pattern=ARN + r"secretsmanager:[a-z0-9-]+:\d{12}:secret:" + _SECRET_SUFFIX
    )
    # The customer-managed key both secrets are encrypted with (a key ARN, not an alias: IAM scopes by key ARN).
    secret_kms_key_arn: str | None = Field(default=None, pattern=ARN + r"kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$")
    # mTLS: alarm when the client certificate expires in fewer days than this (decision 056).
    certificate_expiry_warning_days: int = Field(default=30, ge=7, le=365)
    # Bounded retries so one poison batch never blocks a partition (provisioned mode, see decision log).
    retry_attempts: int = Field(default=10, ge=0, le=10_000)
    max_record_age_seconds: int = Field(default=21_600, ge=60, le=604_800)
    minimum_pollers: int = Field(default=1, ge=1, le=200)
    maximum_pollers: int = Field(default=2, ge=1, le=2000)
    # Whole failed batches in the on-failure bucket are kept this long (decision 055).
    failure_record_retention_days: int = Field(default=30, ge=7, le=3650)

    @model_validator(mode="after")
    def _auth(self) -> Self:
        auth = self.authentication
        if auth is KafkaAuthentication.SASL_SCRAM_512 and not self.sasl_scram_secret_arn:
            raise ValueError("kafka.saslScramSecretArn is required when kafka.authentication is sasl_scram_512")
        if auth is KafkaAuthentication.MTLS and not self.client_certificate_secret_arn:
            raise ValueError("kafka.clientCertificateSecretArn is required when kafka.authentication is mtls")
        if auth is not KafkaAuthentication.IAM and not self.secret_kms_key_arn:
            raise ValueError(
                f"kafka.secretKmsKeyArn is required when kafka.authentication is {auth.value}: the secret must be "
                "encrypted with a customer-managed key (the event source cannot read it under aws/secretsmanager)"
            )
        unused = [
            name
            for name, value, used_by in (
                ("saslScramSecretArn", self.sasl_scram_secret_arn, KafkaAuthentication.SASL_SCRAM_512),
                ("clientCertificateSecretArn", self.client_certificate_secret_arn, KafkaAuthentication.MTLS),
            )
            if value and auth is not used_by
        ]
        if unused:
            raise ValueError(f"kafka.{unused[0]} is set but kafka.authentication is {auth.value}: remove one")
        if self.maximum_pollers < self.minimum_pollers:
            raise ValueError("kafka.maximumPollers must be >= kafka.minimumPollers")
        if self.topic == V6_SUBMISSION_TOPIC:
            raise ValueError(
                f"kafka.topic is the v5 topic; {V6_SUBMISSION_TOPIC} is v6's and is subscribed when platforms has v6"
            )
        return self

    def topic_of(self, platform: Platform) -> str:
        """The Kafka topic a platform's submissions arrive on."""
        return V6_SUBMISSION_TOPIC if platform is Platform.V6 else self.topic

    @property
    def authentication_secret_arn(self) -> str | None:
        """The secret the event source mapping authenticates with (None for IAM)."""
        if self.authentication is KafkaAuthentication.SASL_SCRAM_512:
            return self.sasl_scram_secret_arn
        if self.authentication is KafkaAuthentication.MTLS:
            return self.client_certificate_secret_arn
        return None
