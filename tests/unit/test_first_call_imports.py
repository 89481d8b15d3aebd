"""A handler's first invocation loads nothing the cold start benchmark's sample does not (issue 13, decision 112).

The benchmark times `tests.cold_start_sample.sample_statement(handler)`: the import, what the first call imports to
call AWS, and every loaded model built. That figure is honest only if the first invocation on the function's
common path loads no more: a module imported lazily on the first call would be a cost the benchmark never sees.

So each case invokes the real handler, with its real wiring (clients from `mm_adapters.aws`), once, in a fresh
interpreter with nothing else loaded: no moto, no test package. AWS is a moto server in this test's process
(`AWS_ENDPOINT_URL`), set up with the resources the common path reads. Then the modules the invocation left in
`sys.modules` are compared with the sample's: every module of our own packages, and every other top-level
package, must be in the sample's. Behaviour, not timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mm_adapters import aws as aws_clients
from mm_adapters.status_store import StatusStore
from mm_capacity.store import CAPACITY_TABLE_TTL, capacity_table_definition
from mm_contracts.names import challenge_config_parameter_name
from mm_contracts.settings import (
    CertificateMonitorSettings,
    CompletionSettings,
    RouterSettings,
    ScorerTokenRefresherSettings,
    TimeoutSweeperSettings,
    TokenSource,
)
from mm_contracts.tables import (
    AUDIT_MARKS_TTL,
    STATUS_TABLE_TTL,
    audit_marks_table_definition,
    challenge_table_definition,
    status_table_definition,
)
from tests.builders import KafkaRecord, bus_envelope, msk_event, sqs_event, sqs_record, submission_payload
from tests.cold_start_sample import RUNTIME_PACKAGES, sample_statement
from tests.integration.completion.conftest import CLUSTER_ARN, launch_task, stopped_event, task_arn
from tests.unit.certificate_monitor.test_certificate_monitor import certificate, secret_string
from tests.unit.challenge.helpers import (
    CAPACITY_PARAMETER_NAME,
    PARAMETER_NAME,
    capacity_document,
    capacity_settings_env,
    config_document,
    processor_env,
    routed_submission,
)
from tests.unit.completion.fakes import CHALLENGE_ID, challenge_config
from tests.unit.router.support import ALLOWED_HOST, challenge_item
from topcoder_standin import TopcoderStandIn

ROOT = Path(__file__).resolve().parents[2]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
# Standard-library modules the first HTTP request itself may load, not an import of ours (each well under a
# millisecond): the IDNA codec that encodes a host name (`encodings.idna` needs both).
LOADED_BY_A_REQUEST = frozenset({"stringprep", "unicodedata"})
# The child: the handler, its real wiring, one invocation as Lambda makes it; then what is in `sys.modules`.
INVOKE = """\
import importlib, json, sys
from aws_lambda_powertools.utilities.typing import LambdaContext

module, event = sys.argv[1], json.loads(sys.argv[2])
context = LambdaContext()
context._function_name = "mm-example-function"
context._memory_limit_in_mb = 256
context._invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:mm-example-function"
context._aws_request_id = "00000000-0000-4000-8000-000000000000"
result = importlib.import_module(module).handler(event, context)
print(json.dumps({"result": result, "modules": sorted(sys.modules)}, default=str))
"""
LIST_MODULES = "\nimport json, sys\nprint(json.dumps({'modules': sorted(sys.modules)}))\n"


@dataclass(frozen=True)
class FirstCall:
    """One handler's common-path invocation: its environment (the settings' `to_env()`) and its event."""

    env: dict[str, str]
    event: dict[str, Any]


def _run(code: str, *args: str, env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **CREDENTIALS, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return answer


def beyond_the_sample(first_call: set[str], sample: set[str]) -> set[str]:
    """What the first call loaded that the sample did not: any module of ours, any other package by its top level
    (a standard-library module too, but for what a request itself loads)."""
    sample_top = {name.partition(".")[0] for name in sample}
    beyond = set()
    for name in first_call - sample:
        top = name.partition(".")[0]
        if top in RUNTIME_PACKAGES:
            beyond.add(name)
        elif top not in sample_top and top not in LOADED_BY_A_REQUEST:
            beyond.add(top)
    return beyond


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A moto server on a free local port: the child processes call it as they would call AWS."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def topcoder() -> Iterator[TopcoderStandIn]:
    """The spec-validating Topcoder stand-in (Submission API v5 and the Auth0 proxy) on a local port."""
    with TopcoderStandIn() as standin:
        yield standin


@pytest.fixture
def aws_server(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """This process's clients point at the moto server too, to set the resources up."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    aws_clients.reset_clients()
    yield moto_endpoint
    aws_clients.reset_clients()


def certificate_monitor_first_call(topcoder: TopcoderStandIn) -> FirstCall:
    pem, key = certificate(200)
    secret_arn = aws_clients.client("secretsmanager").create_secret(
        Name=f"mm-test/kafka-client-certificate-{uuid.uuid4().hex[:8]}", SecretString=secret_string([pem], key)
    )["ARN"]
    settings = CertificateMonitorSettings(environment_name="test", client_certificate_secret_arn=secret_arn)
    return FirstCall(settings.to_env(), {})


def router_first_call(topcoder: TopcoderStandIn) -> FirstCall:
    suffix = uuid.uuid4().hex[:8]
    ddb, sns, sqs = (aws_clients.client(name) for name in ("dynamodb", "sns", "sqs"))
    challenges, marks = f"mm-test-challenges-{suffix}", f"mm-test-audit-marks-{suffix}"
    ddb.create_table(**challenge_table_definition(challenges))
    ddb.create_table(**audit_marks_table_definition(marks))
    ddb.update_time_to_live(TableName=marks, TimeToLiveSpecification=AUDIT_MARKS_TTL)
    challenge_id = str(uuid.uuid4())
    ddb.put_item(TableName=challenges, Item=challenge_item(challenge_id))
    settings = RouterSettings(
        environment_name="test",
        sns_topic_arn=sns.create_topic(Name=f"mm-test-submissions-{suffix}")["TopicArn"],
        challenge_table_name=challenges,
        audit_queue_url=sqs.create_queue(QueueName=f"mm-test-audit-{suffix}")["QueueUrl"],
        audit_marks_table_name=marks,
        allowed_url_hosts=(ALLOWED_HOST,),
    )
    record = KafkaRecord(bus_envelope(submission_payload(challengeId=challenge_id)))
    return FirstCall(settings.to_env(), msk_event([record]))


def status_and_capacity_tables(suffix: str) -> tuple[str, str]:
    ddb = aws_clients.client("dynamodb")
    status, capacity = f"mm-test-status-{suffix}", f"mm-test-capacity-{suffix}"
    ddb.create_table(**status_table_definition(status))
    ddb.update_time_to_live(TableName=status, TimeToLiveSpecification=STATUS_TABLE_TTL)
    ddb.create_table(**capacity_table_definition(capacity))
    ddb.update_time_to_live(TableName=capacity, TimeToLiveSpecification=CAPACITY_TABLE_TTL)
    return status, capacity


def sweeper_first_call(topcoder: TopcoderStandIn) -> FirstCall:
    """A scheduled sweep of an environment with nothing overdue: the run every five minutes mostly is."""
    suffix = uuid.uuid4().hex[:8]
    status, capacity = status_and_capacity_tables(suffix)
    cluster = aws_clients.client("ecs").create_cluster(clusterName=f"mm-scorers-{suffix}")["cluster"]["clusterArn"]
    caps = f"/mm-test-{suffix}/capacity"
    aws_clients.client("ssm").put_parameter(Name=caps, Value=json.dumps(capacity_document()), Type="String")
    settings = TimeoutSweeperSettings(
        environment_name="test",
        status_table_name=status,
        completion_function_name="mm-test-completion",
        ecs_cluster_arns=(cluster,),
        capacity_table_name=capacity,
        capacity_parameter_name=caps,
        challenge_config_parameter_prefix=f"/mm-test-{suffix}/challenges",
        challenge_queue_name_template="mm-test-challenge-{challenge_id}",
    )
    return FirstCall(settings.to_env(), {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})


def challenge_processor_first_call(topcoder: TopcoderStandIn) -> FirstCall:
    """One routed submission on the challenge queue: admitted under the caps and launched on Fargate (moto's ECS)."""
    suffix = uuid.uuid4().hex[:8]
    status, capacity = status_and_capacity_tables(suffix)
    ec2, ecs, ssm = (aws_clients.client(name) for name in ("ec2", "ecs", "ssm"))
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # moto's awsvpc networking needs it
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    group = ec2.create_security_group(GroupName=f"mm-scorer-{suffix}", Description="scorer tasks", VpcId=vpc)
    cluster, family, container = f"mm-scorers-{suffix}", f"mm-scorer-{suffix}", "scorer"
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(
        family=family,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="1024",
        memory="2048",
        containerDefinitions=[
            {"name": container, "image": "mm-scorer:1", "essential": True, "cpu": 1024, "memory": 2048}
        ],
    )
    config = config_document(
        ecsCluster=cluster,
        ecsTaskDefinition=family,
        scorerContainerName=container,
        subnets=[subnet["SubnetId"]],
        securityGroups=[group["GroupId"]],
    )
    ssm.put_parameter(Name=PARAMETER_NAME, Value=json.dumps(config), Type="String", Overwrite=True)
    ssm.put_parameter(
        Name=CAPACITY_PARAMETER_NAME, Value=json.dumps(capacity_document()), Type="String", Overwrite=True
    )
    queue = aws_clients.client("sqs").create_queue(QueueName=f"mm-test-challenge-{suffix}")["QueueUrl"]
    env = processor_env(status, **capacity_settings_env(capacity, queue))
    return FirstCall(env, sqs_event([sqs_record(routed_submission().to_json())]))


def auth0_secret(suffix: str) -> str:
    """The Auth0 client credentials the proxy token provider reads."""
    credentials = {
        "client_id": "mm-processor-client",
        "client_secret": "s3cr3t-client-secret",
        "auth0_url": "https://topcoder-dev.auth0.com/oauth/token",
        "audience": "https://m2m.topcoder-dev.com/",
    }
    secret = aws_clients.client("secretsmanager").create_secret(
        Name=f"mm-test-{suffix}/auth0", SecretString=json.dumps(credentials)
    )
    return str(secret["ARN"])


def completion_first_call(topcoder: TopcoderStandIn) -> FirstCall:
    """A scorer task of a launched run stopped with exit code 1: the outcome is recorded and a failed review is
    posted to the Submission API with a token from the Auth0 proxy (the report path; a success posts nothing)."""
    suffix = uuid.uuid4().hex[:8]
    status, capacity = status_and_capacity_tables(suffix)
    caps = f"/mm-test-{suffix}/capacity"
    ssm = aws_clients.client("ssm")
    ssm.put_parameter(Name=caps, Value=json.dumps(capacity_document()), Type="String")
    ssm_prefix = f"/mm-test-{suffix}"
    ssm.put_parameter(
        Name=challenge_config_parameter_name(CHALLENGE_ID, ssm_prefix),
        Type="String",
        Value=challenge_config().to_json(),
    )
    submission_id, arn = str(uuid.uuid4()), task_arn()
    topcoder.add_submission(submission_id, CHALLENGE_ID, 40_158_994)
    launch_task(StatusStore(status), submission_id, arn, CLUSTER_ARN)
    settings = CompletionSettings(
        environment_name="example",
        status_table_name=status,
        challenge_config_parameter_prefix=f"{ssm_prefix}/challenges",
        submission_api_url=topcoder.base_url,
        api_max_retries=0,
        token_source=TokenSource.AUTH0_PROXY,
        auth0_proxy_url=topcoder.token_url,
        auth0_credentials_secret_arn=auth0_secret(suffix),
        capacity_table_name=capacity,
        capacity_parameter_name=caps,
    )
    return FirstCall(settings.to_env(), stopped_event(submission_id, arn, exit_code=1))


def scorer_token_refresher_first_call(topcoder: TopcoderStandIn) -> FirstCall:
    """No scorer token stored yet: one is fetched from the Auth0 proxy and written as a SecureString."""
    suffix = uuid.uuid4().hex[:8]
    settings = ScorerTokenRefresherSettings(
        environment_name="test",
        auth0_proxy_url=topcoder.token_url,
        auth0_credentials_secret_arn=auth0_secret(suffix),
        scorer_token_parameter_name=f"/mm-test-{suffix}/auth0/scorer-token",
        refresh_margin_seconds=3600,
    )
    return FirstCall(settings.to_env(), {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})


FIRST_CALLS: dict[str, Callable[[TopcoderStandIn], FirstCall]] = {
    "certificate_monitor.handler": certificate_monitor_first_call,
    "challenge_lambda.handler": challenge_processor_first_call,
    "completion_lambda.handler": completion_first_call,
    "router_lambda.handler": router_first_call,
    "scorer_token_refresher.handler": scorer_token_refresher_first_call,
    "sweeper_lambda.handler": sweeper_first_call,
}


@pytest.mark.parametrize("handler_module", sorted(FIRST_CALLS))
def test_a_first_invocation_loads_nothing_the_cold_start_sample_does_not(
    handler_module: str, aws_server: str, topcoder: TopcoderStandIn
) -> None:
    # Given the resources the handler's common path reads, on a moto server (and Topcoder's stand-in)
    first_call = FIRST_CALLS[handler_module](topcoder)
    # When the handler is invoked once in a fresh interpreter, and the benchmark's sample runs in another
    invoked = _run(
        INVOKE, handler_module, json.dumps(first_call.event), env={**first_call.env, "AWS_ENDPOINT_URL": aws_server}
    )
    sample = _run(sample_statement(handler_module) + LIST_MODULES, env={})
    # Then the invocation took its common path (it answered, no record failed) and loaded nothing the sample
    # leaves out
    assert invoked["result"] is not None
    assert not invoked["result"].get("batchItemFailures")
    assert beyond_the_sample(set(invoked["modules"]), set(sample["modules"])) == set()


def test_the_check_sees_a_module_imported_on_the_first_call() -> None:
    # Given a first call that imported a module of ours and a package the sample does not load
    sample = {"mm_contracts", "mm_contracts.models", "botocore", "botocore.session", "json"}
    first_call = sample | {"mm_contracts.models.audit", "requests", "requests.models", "botocore.waiter", "stringprep"}
    # Then both are named, by module and by package; a submodule of a loaded package and a request's codec are not
    assert beyond_the_sample(first_call, sample) == {"mm_contracts.models.audit", "requests"}


def test_the_moto_server_child_sees_no_moto() -> None:
    # The child starts from nothing: a moto or test import there would hide what the handler loads.
    answer = _run(LIST_MODULES, env={})
    assert {name.partition(".")[0] for name in answer["modules"]} & {"moto", "tests", "boto3"} == set()
    assert os.environ.get("AWS_ENDPOINT_URL") is None
