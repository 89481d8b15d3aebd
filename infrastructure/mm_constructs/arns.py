"""ARNs of imported or named resources, as plain strings (IAM scoping and cdk-nag finding ids stay readable)."""

from __future__ import annotations

from dataclasses import dataclass

from infrastructure.config import EnvironmentConfig


@dataclass(frozen=True)
class Arns:
    partition: str
    region: str
    account: str

    @classmethod
    def of(cls, config: EnvironmentConfig) -> Arns:
        return cls(partition=config.kafka.cluster_arn.split(":")[1], region=config.region, account=config.account)

    def ssm_parameter(self, name: str) -> str:
        return f"arn:{self.partition}:ssm:{self.region}:{self.account}:parameter/{name.lstrip('/')}"

    def task_definition_family(self, family: str) -> str:
        """Every revision of one task-definition family."""
        return f"arn:{self.partition}:ecs:{self.region}:{self.account}:task-definition/{family}:*"

    def dynamodb_index(self, table_name: str, index_name: str) -> str:
        return f"arn:{self.partition}:dynamodb:{self.region}:{self.account}:table/{table_name}/index/{index_name}"

    def lambda_function(self, name: str) -> str:
        """A function's unqualified ARN (no version or alias: what an Invoke by name is authorized on)."""
        return f"arn:{self.partition}:lambda:{self.region}:{self.account}:function:{name}"

    def sqs_queue(self, name: str) -> str:
        return f"arn:{self.partition}:sqs:{self.region}:{self.account}:{name}"

    @staticmethod
    def cluster_tasks(cluster_arn: str) -> str:
        """Every task of one ECS cluster: `arn:...:task/<cluster-name>/*`."""
        return cluster_arn.replace(":cluster/", ":task/", 1) + "/*"
