"""Deploy rehearsal: the synthesized templates deployed into moto's CloudFormation (docs/decisions/057).

moto's CloudFormation silently skips resource types it does not model (a warning, yet CREATE_COMPLETE),
so this module keeps an explicit account of every logical id:

- resources of a type `adapters()` covers, and any resource whose properties reference one of them (the
  dashboard reads alarm ARNs), are taken out of the template and created afterwards through their
  service API, from the template's own properties; an MSK event source mapping, which moto's Lambda
  refuses, is checked against the API's input model instead (`validated_only`);
- everything else goes to `cloudformation.create_stack`, and must then be CREATE_COMPLETE, with its
  logical id, in `describe_stack_resources` (`unaccounted()` names whatever is in neither).

Intrinsic functions in the deferred resources are resolved against the deployed stack: every
`Ref`/`Fn::GetAtt` of a resource CloudFormation created becomes an extra stack output (so moto itself
resolves it, with its own physical ids), `Fn::ImportValue` is read from the account's exports, and
`Fn::Join`/`Fn::Sub`/`Fn::Select`/`Fn::Split` and the pseudo parameters are evaluated here.
`MOTO_QUIRKS` rewrites the few properties moto's own models misread (for moto only; same meaning).
An intrinsic this module cannot resolve, or a type without an adapter, fails naming it.
"""

from tests.infrastructure.rehearsal.adapters import MOTO_QUIRKS, AdapterSpec, adapters
from tests.infrastructure.rehearsal.assets import bootstrap_account, publish_assets
from tests.infrastructure.rehearsal.deploy import deploy_stack, deployment_order, exports, split_template, unaccounted
from tests.infrastructure.rehearsal.intrinsics import Resolver, referenced_logical_ids
from tests.infrastructure.rehearsal.records import Created, RehearsalError, StackDeployment

__all__ = [
    "MOTO_QUIRKS",
    "AdapterSpec",
    "Created",
    "RehearsalError",
    "Resolver",
    "StackDeployment",
    "adapters",
    "bootstrap_account",
    "deploy_stack",
    "deployment_order",
    "exports",
    "publish_assets",
    "referenced_logical_ids",
    "split_template",
    "unaccounted",
]
