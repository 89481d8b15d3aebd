"""The challenge handler against moto: SSM config and caps, the status and capacity tables, the challenge queue (SQS),
and an ECS cluster with awsvpc networking."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from mm_adapters import aws as aws_clients
from tests.conftest import create_capacity_table
from tests.unit.challenge.helpers import (
    CAPACITY_PARAMETER_NAME,
    CHALLENGE_ID,
    PARAMETER_NAME,
    capacity_document,
    capacity_settings_env,
    config_document,
    processor_env,
)

CLUSTER = "mm-scorers"
TASK_FAMILY = "mm-scorer-example"
CONTAINER = "scorer"


@dataclass
class EcsWorld:
    subnet_ids: list[str]
    security_group_id: str
    task_definition_arn: str
    queue_url: str = ""
    capacity_table: str = ""
    runtask_calls: list[dict[str, Any]] = field(default_factory=list)
    ssm_get_calls: list[str] = field(default_factory=list)
    logs: io.StringIO = field(default_factory=io.StringIO)

    def config(self, **overrides: Any) -> dict[str, Any]:
        values: dict[str, Any] = {
            "ecsCluster": CLUSTER,
            "ecsTaskDefinition": TASK_FAMILY,
            "scorerContainerName": CONTAINER,
            "subnets": self.subnet_ids,
            "securityGroups": [self.security_group_id],
            **overrides,
        }
        return config_document(**values)

    def put_config(self, document: dict[str, Any] | str) -> None:
        value = document if isinstance(document, str) else json.dumps(document)
        aws_clients.client("ssm").put_parameter(Name=PARAMETER_NAME, Value=value, Type="String", Overwrite=True)

    def put_capacity(self, document: dict[str, Any] | str) -> None:
        value = document if isinstance(document, str) else json.dumps(document)
        aws_clients.client("ssm").put_parameter(
            Name=CAPACITY_PARAMETER_NAME, Value=value, Type="String", Overwrite=True
        )

    def queued_bodies(self) -> list[str]:
        """Every message on the challenge queue (received and deleted: what the event source mapping would do)."""
        sqs = aws_clients.client("sqs")
        bodies: list[str] = []
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return bodies
            for received in messages:
                bodies.append(received["Body"])
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=received["ReceiptHandle"])

    def tasks(self) -> list[dict[str, Any]]:
        ecs = aws_clients.client("ecs")
        arns = ecs.list_tasks(cluster=CLUSTER)["taskArns"]
        if not arns:
            return []
        described: list[dict[str, Any]] = ecs.describe_tasks(cluster=CLUSTER, tasks=arns, include=["TAGS"])["tasks"]
        return described

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.logs.getvalue().splitlines() if line.strip()]


@pytest.fixture
def ecs_world(status_table: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[EcsWorld]:
    from challenge_lambda import handler, wiring

    ec2 = aws_clients.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    # moto's awsvpc task networking needs DNS hostnames on the VPC (platform-facts.md).
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for cidr, zone in (("10.20.1.0/24", "us-east-1a"), ("10.20.2.0/24", "us-east-1b"))
    ]
    sg = ec2.create_security_group(GroupName="mm-scorer", Description="scorer tasks", VpcId=vpc_id)["GroupId"]

    ecs = aws_clients.client("ecs")
    ecs.create_cluster(clusterName=CLUSTER)
    task_definition_arn = ecs.register_task_definition(
        family=TASK_FAMILY,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="1024",
        memory="2048",
        containerDefinitions=[
            {
                "name": CONTAINER,
                "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mm-scorer:1",
                "essential": True,
                "cpu": 1024,
                "memory": 2048,
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]

    queue_url = aws_clients.client("sqs").create_queue(QueueName=f"mm-dev-challenge-{CHALLENGE_ID}")["QueueUrl"]
    world = EcsWorld(
        subnet_ids=subnets,
        security_group_id=sg,
        task_definition_arn=task_definition_arn,
        queue_url=queue_url,
        capacity_table=create_capacity_table(),
    )
    world.put_config(world.config())
    world.put_capacity(capacity_document())

    # Spies on the very clients the handler uses (mm_adapters.aws caches them per service).
    ecs.meta.events.register(
        "provide-client-params.ecs.RunTask", lambda params, **_: world.runtask_calls.append(params)
    )
    aws_clients.client("ssm").meta.events.register(
        "provide-client-params.ssm.GetParameter", lambda params, **_: world.ssm_get_calls.append(params["Name"])
    )

    environment = processor_env(
        status_table,
        CONFIG_CACHE_SECONDS="300",
        POWERTOOLS_SERVICE_NAME="challenge-processor",
        **capacity_settings_env(world.capacity_table, queue_url),
    )
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    log_handler = logging.StreamHandler(world.logs)
    log_handler.setFormatter(handler.logger.registered_formatter)
    handler.logger.addHandler(log_handler)
    wiring.use_dependencies(None)
    try:
        yield world
    finally:
        wiring.use_dependencies(None)
        logging.getLogger(handler.logger.name).removeHandler(log_handler)
