"""Kafka authentication (decision 054), the S3 on-failure destination (055) and the certificate monitor (056),
held to the synthesized templates (moto evaluates no IAM: the grants are asserted on the template)."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest

from infrastructure.config import EnvironmentConfigError, load_environment, parse_environment
from infrastructure.wiring import WiringPlan
from tests.synth import Synthesized, synth, synth_example

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]

KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SCRAM = "arn:aws:secretsmanager:us-east-1:123456789012:secret:AmazonMSK_mm-processor-example-AbCdEf"
CERT = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mm-processor/example/kafka-client-certificate-AbCdEf"
CORE = "mm-example-core"


def raw_example(**kafka: Any) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(load_environment("example").model_dump_json(by_alias=True, exclude_none=True))
    raw["kafka"].update(kafka)
    return raw


@functools.cache
def synthesized(mode: str) -> Synthesized:
    if mode == "mtls":
        raw = raw_example(authentication="mtls", clientCertificateSecretArn=CERT, secretKmsKeyArn=KEY)
    else:
        raw = raw_example(authentication="sasl_scram_512", saslScramSecretArn=SCRAM, secretKmsKeyArn=KEY)
    return synth(parse_environment(raw), label=f"kafka-{mode}")


def resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == type_}


def function_role_statements(template: dict[str, Any], function_name: str) -> list[dict[str, Any]]:
    (fn,) = [
        f
        for f in resources(template, "AWS::Lambda::Function").values()
        if f["Properties"].get("FunctionName") == function_name
    ]
    role_id = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    documents = [p["PolicyDocument"] for p in template["Resources"][role_id]["Properties"].get("Policies", [])]
    documents += [
        p["Properties"]["PolicyDocument"]
        for p in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    return [s for d in documents for s in d["Statement"]]


def actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def the_mapping(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ((lid, esm),) = resources(template, "AWS::Lambda::EventSourceMapping").items()
    return lid, esm["Properties"]


# ------------------------------------------------------------------ config
@pytest.mark.parametrize(
    ("kafka", "message"),
    [
        ({"authentication": "sasl_scram_512", "saslScramSecretArn": SCRAM}, "secretKmsKeyArn is required"),
        ({"authentication": "mtls", "secretKmsKeyArn": KEY}, "clientCertificateSecretArn is required"),
        ({"authentication": "mtls", "clientCertificateSecretArn": CERT}, "secretKmsKeyArn is required"),
        (
            {"authentication": "sasl_scram_512", "secretKmsKeyArn": KEY, "saslScramSecretArn": CERT},
            "saslScramSecretArn",  # MSK only reads SCRAM secrets named AmazonMSK_*
        ),
        (
            {
                "authentication": "mtls",
                "clientCertificateSecretArn": CERT,
                "secretKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:alias/x",
            },
            "secretKmsKeyArn",  # a key ARN: IAM scopes kms:Decrypt by key, not alias
        ),
        (
            {"authentication": "mtls", "clientCertificateSecretArn": CERT[:-7], "secretKmsKeyArn": KEY},
            "clientCertificateSecretArn",  # the complete ARN: grants and the KMS condition match it exactly
        ),
        ({"clientCertificateSecretArn": CERT}, "clientCertificateSecretArn is set but kafka.authentication is iam"),
    ],
)
def test_secret_based_authentication_needs_its_secret_and_a_customer_managed_key(
    kafka: dict[str, Any], message: str
) -> None:
    with pytest.raises(EnvironmentConfigError, match=message):
        parse_environment(raw_example(**kafka))


# ------------------------------------------------------------------ SASL/SCRAM and mTLS
def test_sasl_scram_uses_the_secret_and_may_decrypt_it_only_through_secrets_manager() -> None:
    core = synthesized("sasl").templates[CORE]
    _, esm = the_mapping(core)
    assert esm["SourceAccessConfigurations"] == [{"Type": "SASL_SCRAM_512_AUTH", "URI": SCRAM}]
    statements = function_role_statements(core, "mm-example-router")
    assert any(actions(s) >= {"secretsmanager:GetSecretValue"} and s["Resource"] == SCRAM for s in statements)
    (decrypt,) = [s for s in statements if s["Resource"] == KEY]
    assert actions(decrypt) == {"kms:Decrypt"}
    assert decrypt["Condition"] == {
        "StringEquals": {
            "kms:ViaService": "secretsmanager.us-east-1.amazonaws.com",
            "kms:EncryptionContext:SecretARN": SCRAM,
        }
    }
    assert not any("kafka-cluster:Connect" in actions(s) for s in statements)  # IAM auth grants only with IAM
    names = {f["Properties"].get("FunctionName") for f in resources(core, "AWS::Lambda::Function").values()}
    assert "mm-example-certificate-monitor" not in names  # only mTLS has a certificate to watch


def test_mtls_authenticates_with_the_client_certificate_secret() -> None:
    core = synthesized("mtls").templates[CORE]
    _, esm = the_mapping(core)
    assert esm["SourceAccessConfigurations"] == [{"Type": "CLIENT_CERTIFICATE_TLS_AUTH", "URI": CERT}]
    statements = function_role_statements(core, "mm-example-router")
    assert any(
        actions(s) == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"} and s["Resource"] == CERT
        for s in statements
    )
    (decrypt,) = [s for s in statements if s["Resource"] == KEY]
    assert decrypt["Condition"]["StringEquals"]["kms:EncryptionContext:SecretARN"] == CERT


def test_the_certificate_monitor_runs_on_a_schedule_with_only_the_secret_it_reads() -> None:
    result = synthesized("mtls")
    core = result.templates[CORE]
    plan = WiringPlan(result.config)
    (fn,) = [
        f["Properties"]
        for f in resources(core, "AWS::Lambda::Function").values()
        if f["Properties"].get("FunctionName") == "mm-example-certificate-monitor"
    ]
    assert fn["Handler"] == "certificate_monitor.handler.handler"
    assert fn["Environment"]["Variables"] == plan.certificate_monitor_settings().to_env()
    assert fn["ReservedConcurrentExecutions"] == result.config.certificate_monitor.reserved_concurrency
    granted = [
        s
        for s in function_role_statements(core, "mm-example-certificate-monitor")
        if actions(s) & {"secretsmanager:GetSecretValue", "kms:Decrypt"}
    ]
    assert [(actions(s), s["Resource"]) for s in granted] == [
        ({"secretsmanager:GetSecretValue"}, CERT),
        ({"kms:Decrypt"}, KEY),
    ]
    (rule,) = [
        r["Properties"]
        for r in resources(core, "AWS::Events::Rule").values()
        if r["Properties"].get("Name") == "mm-example-certificate-check"
    ]
    assert rule["ScheduleExpression"] == "rate(12 hours)"  # at least twice per alarm period (one day)


def test_the_expiry_alarm_fires_before_expiry_and_when_the_monitor_is_silent() -> None:
    core = synthesized("mtls").templates[CORE]
    (alarm,) = [
        a["Properties"]
        for a in resources(core, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "ClientCertificateDaysToExpiry"
    ]
    assert alarm["Namespace"] == "MMProcessor"
    assert sorted((d["Name"], d["Value"]) for d in alarm["Dimensions"]) == [
        ("Environment", "example"),
        ("service", "certificate-monitor"),
    ]
    assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["Statistic"]) == ("LessThanThreshold", 30, "Minimum")
    assert (alarm["Period"], alarm["EvaluationPeriods"]) == (86_400, 1)
    assert alarm["TreatMissingData"] == "breaching"  # a failing monitor must not look healthy
    assert alarm["AlarmActions"]


# ------------------------------------------------------------------ S3 on-failure destination (example: IAM)
@pytest.fixture(scope="module")
def example_core() -> dict[str, Any]:
    return synth_example().templates[CORE]


def test_failed_batches_go_whole_to_a_private_encrypted_expiring_bucket(example_core: dict[str, Any]) -> None:
    ((bucket_id, bucket),) = resources(example_core, "AWS::S3::Bucket").items()
    props = bucket["Properties"]
    assert props["BucketName"] == "mm-example-router-failures-123456789012-us-east-1"
    _, esm = the_mapping(example_core)
    assert esm["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [bucket_id, "Arn"]}}}
    (sse,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert bucket["DeletionPolicy"] == "Retain"  # example keeps its data (retainData default true)
    (policy,) = resources(example_core, "AWS::S3::BucketPolicy").values()
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    names = [q["Properties"].get("QueueName") for q in resources(example_core, "AWS::SQS::Queue").values()]
    assert "mm-example-router-failures" not in names  # the offsets-only queue is gone
    assert "RouterFailureBucketName" in example_core["Outputs"]


def test_the_router_may_write_failed_batches_only_into_its_own_account_bucket(example_core: dict[str, Any]) -> None:
    bucket = "arn:aws:s3:::mm-example-router-failures-123456789012-us-east-1"
    statements = [
        s
        for s in function_role_statements(example_core, "mm-example-router")
        if any(a.startswith("s3:") for a in actions(s))
    ]
    assert sorted((sorted(actions(s)), s["Resource"]) for s in statements) == [
        (["s3:ListBucket"], bucket),
        (["s3:PutObject"], f"{bucket}/*"),
    ]
    assert all(s["Condition"] == {"StringEquals": {"s3:ResourceAccount": "123456789012"}} for s in statements)


def test_records_in_the_bucket_and_dropped_records_raise_alarms(example_core: dict[str, Any]) -> None:
    esm_id, esm = the_mapping(example_core)
    assert "EventCount" in esm["MetricsConfig"]["Metrics"]  # the metrics below are opt-in
    alarms = {
        a["Properties"].get("MetricName"): a["Properties"]
        for a in resources(example_core, "AWS::CloudWatch::Alarm").values()
    }
    for metric in ("OnFailureDestinationDeliveredEventCount", "DroppedEventCount"):
        alarm = alarms[metric]
        assert alarm["Namespace"] == "AWS/Lambda"
        assert alarm["Dimensions"] == [{"Name": "EventSourceMappingUUID", "Value": {"Ref": esm_id}}]
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
        assert alarm["AlarmActions"]


def test_a_developer_environment_destroys_its_failure_bucket() -> None:
    raw = raw_example()
    raw["retainData"] = False
    core = synth(parse_environment(raw), label="kafka-dev", checks=False).templates[CORE]
    (bucket,) = resources(core, "AWS::S3::Bucket").values()
    assert bucket["DeletionPolicy"] == "Delete"
