"""What the rehearsal records and raises, and the fixed values it deploys with."""

from __future__ import annotations

from dataclasses import dataclass, field

PSEUDO_PARTITION = "aws"
PSEUDO_URL_SUFFIX = "amazonaws.com"
# What `cdk bootstrap` leaves in the account and every CDK template checks (Rules.CheckBootstrapVersion).
BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
BOOTSTRAP_VERSION = "30"
OUTPUT_PREFIX = "RehearsalResolve"


class RehearsalError(AssertionError):
    """The rehearsal could not deploy a template as written; the message names the stack and resource."""


@dataclass
class Created:
    """What an adapter created: the value `Ref` returns and the attributes `Fn::GetAtt` can read."""

    physical_id: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class StackDeployment:
    stack_name: str
    by_cloudformation: dict[str, str]  # logical id -> resource type (CREATE_COMPLETE in the stack)
    by_adapter: dict[str, Created]  # logical id -> what the service API call returned
    validated_only: dict[str, str]  # logical id -> type: checked against the API model, moto cannot hold it
    outputs: dict[str, str]
