"""Where the functions (VPC, subnets) and the scorer tasks (ECS cluster, subnets, security groups) run."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from infrastructure.config.base import ARN, ConfigModel


class NetworkSettings(ConfigModel):
    vpc_id: str = Field(pattern=r"^vpc-[0-9a-f]{8,17}$")
    private_subnet_ids: tuple[str, ...] = Field(min_length=1)
    availability_zones: tuple[str, ...] = Field(min_length=1)
    # Run the functions inside the VPC (needs VPC endpoints or NAT: see docs/deploy.md).
    functions_in_vpc: bool = True

    @field_validator("private_subnet_ids")
    @classmethod
    def _subnets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for subnet in value:
            if not re.fullmatch(r"subnet-[0-9a-f]{8,17}", subnet):
                raise ValueError(f"not a subnet id: {subnet!r}")
        return value


class EcsSettings(ConfigModel):
    cluster_arn: str = Field(pattern=ARN + "ecs:[a-z0-9-]+:\\d{12}:cluster/")
    subnets: tuple[str, ...] = Field(min_length=1)  # scorer tasks run here (private, no public IP)
    security_group_ids: tuple[str, ...] = Field(min_length=1)
