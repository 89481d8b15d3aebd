"""What each function's role must grant, and whether the synthesized templates grant exactly that (decision 048).

moto evaluates no IAM, so this reads the templates as IAM would: a function's needs come from its configuration
(VPC -> the ENI actions Lambda checks at CreateFunction, its log group, tracing, its event sources and
destinations, the KMS key of each topic or queue it touches) and from its code (`aws_calls`, each action mapped
to the resources it targets in this environment). Each need must be allowed by a statement of the function's
role (inline policies, attached `AWS::IAM::Policy` resources, known managed policies), resource patterns matched
after resolving `Ref` / `Fn::GetAtt` / `Fn::Join` / `Fn::ImportValue` to ARNs, and no Deny may match it. The
reverse: a granted (action, resource) no need covers is a grant the code never uses, unless it is one of the
few CDK adds with its own grants (`CDK_GRANT_EXTRAS`, each with its reason).

Pure Python over template dicts: no CDK import. Modules: `templates` (resolution, grants, matching), `needs`
(configuration needs), `code_resources` (the code's calls -> resources), `checker` (`check`).
"""

from infrastructure.permissions.checker import CDK_GRANT_EXTRAS, Findings, check
from infrastructure.permissions.code_resources import CodeResources
from infrastructure.permissions.needs import (
    ENI_ACTIONS_ON_INTERFACES,
    ENI_DESCRIBE_ACTIONS,
    SAMPLE_ID,
    Need,
    NeedsOf,
)
from infrastructure.permissions.templates import (
    MANAGED_POLICIES,
    MSK_NETWORK_ACTIONS,
    Function,
    Grant,
    Templates,
    allowed,
    as_list,
    matches,
)

__all__ = [
    "CDK_GRANT_EXTRAS",
    "ENI_ACTIONS_ON_INTERFACES",
    "ENI_DESCRIBE_ACTIONS",
    "MANAGED_POLICIES",
    "MSK_NETWORK_ACTIONS",
    "SAMPLE_ID",
    "CodeResources",
    "Findings",
    "Function",
    "Grant",
    "Need",
    "NeedsOf",
    "Templates",
    "allowed",
    "as_list",
    "check",
    "matches",
]
