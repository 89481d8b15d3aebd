"""One fault-injection layer for the tests and `mm-processor local run` (decision 077).

- `FaultKind`: every fault by name; `FaultRule` / `FaultPlan`: which fire, for whom, when.
- `install_botocore_faults(client, plan)`: AWS faults (SNS, DynamoDB, SSM, RunTask) on a boto3 client.
- `with_http_faults(transport, plan)`: Topcoder API faults in front of a Topcoder transport.
- Delivery and task faults (SQS, Kafka, STOPPED events, task behaviour) are decided by the driver
  (the matrix simulator, the local engine) with `plan.fire(kind, ids=..., now=...)`.
See fault_injection/README.md.
"""

from fault_injection.botocore_faults import (
    CONFLICT_MARKER_ENV,
    FaultInstallation,
    SimulatedCrash,
    install_botocore_faults,
)
from fault_injection.http_faults import FaultInjectingTransport, with_http_faults
from fault_injection.kinds import BOTOCORE_KINDS, FAULT_KIND_ALIASES, HTTP_KINDS, FaultKind, FaultLayer
from fault_injection.plan import (
    ANY_TARGET,
    FAULT_PLAN_ENV,
    FaultFiring,
    FaultPlan,
    FaultRule,
    FaultWindow,
    parse_cli,
)

__all__ = [
    "ANY_TARGET",
    "BOTOCORE_KINDS",
    "CONFLICT_MARKER_ENV",
    "FAULT_KIND_ALIASES",
    "FAULT_PLAN_ENV",
    "HTTP_KINDS",
    "FaultFiring",
    "FaultInjectingTransport",
    "FaultInstallation",
    "FaultKind",
    "FaultLayer",
    "FaultPlan",
    "FaultRule",
    "FaultWindow",
    "SimulatedCrash",
    "install_botocore_faults",
    "parse_cli",
    "with_http_faults",
]
