"""docs/deploy.md's VPC endpoint tables, held to the code and the templates (docs/decisions/059).

The functions' table must list exactly the services the code of each function that runs in the VPC calls
(`infrastructure.aws_calls`), with the right endpoint name and type; the Kafka table must cover what the
router's event source mapping reaches from the cluster's VPC.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from infrastructure.aws_calls import HANDLERS_BY_FUNCTION, IMPLICIT_CALLS, aws_calls
from infrastructure.packaging import REPO_ROOT
from tests.synth import synth_example

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]

DEPLOY_DOC = REPO_ROOT / "docs" / "deploy.md"
FUNCTIONS_TABLE = "### Endpoints for the functions"
KAFKA_TABLE = "### Endpoints for the Kafka event source"
GATEWAY_SERVICES = {"dynamodb", "s3"}  # the only services with gateway endpoints


def table_rows(doc: str, heading: str) -> list[list[str]]:
    """The cells of the first Markdown table after `heading` (backticks removed), header row excluded."""
    assert heading in doc, f"{DEPLOY_DOC.name}: no section {heading!r}"
    section = doc.split(heading, 1)[1]
    rows: list[list[str]] = []
    for line in section.splitlines():
        if line.startswith("|"):
            rows.append([cell.strip().strip("`") for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    assert len(rows) > 2, f"{DEPLOY_DOC.name}: no table under {heading!r}"
    return rows[2:]  # header and the |---| line


def vpc_functions(templates: dict[str, dict[str, Any]]) -> set[str]:
    """Function keys (aws_calls' names) of every function with a VPC configuration, by its handler."""
    by_handler = {handler: function for function, handler in HANDLERS_BY_FUNCTION.items()}
    found = set()
    for stack, template in templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] != "AWS::Lambda::Function" or "VpcConfig" not in resource["Properties"]:
                continue
            handler = resource["Properties"]["Handler"]
            assert handler in by_handler, f"{stack}/{logical_id}: VPC function with unknown handler {handler}"
            found.add(by_handler[handler])
    return found


def called_services(function: str) -> set[str]:
    """Services the function's code calls over the network (not actions a call implies, like iam:PassRole)."""
    implied = {entry.call for entry in IMPLICIT_CALLS if entry.function == function}
    return {call.service for call in aws_calls(function) - implied}


DESTINATION_SERVICES = {"AWS::S3::Bucket": "s3", "AWS::SQS::Queue": "sqs", "AWS::SNS::Topic": "sns"}


def destination_service(template: dict[str, Any], destination: Any) -> str:
    """The service of an on-failure destination: an ARN, or a Fn::GetAtt of a resource in the template."""
    if isinstance(destination, str):
        return destination.split(":")[2]
    logical_id = destination["Fn::GetAtt"][0]
    return DESTINATION_SERVICES[template["Resources"][logical_id]["Type"]]


def endpoint_name(service: str) -> str:
    prefix = botocore.session.get_session().get_service_model(service).endpoint_prefix
    return f"com.amazonaws.<region>.{prefix}"


def test_the_functions_endpoint_table_lists_exactly_the_services_vpc_functions_call() -> None:
    functions = vpc_functions(synth_example().templates)
    assert functions, "the example environment runs its functions in the VPC: nothing found"
    expected: dict[str, set[str]] = {}
    for function in functions:
        for service in called_services(function):
            expected.setdefault(service, set()).add(function)

    rows = table_rows(DEPLOY_DOC.read_text(), FUNCTIONS_TABLE)
    documented = {row[0]: row for row in rows}
    assert len(documented) == len(rows), "a service is listed twice"
    assert set(documented) == set(expected), (
        f"missing: {sorted(set(expected) - set(documented))}, not called: {sorted(set(documented) - set(expected))}"
    )
    for service, (_, name, kind, callers) in documented.items():
        assert name == endpoint_name(service), service
        assert kind == ("gateway" if service in GATEWAY_SERVICES else "interface"), service
        assert {caller.strip() for caller in callers.split(",")} == expected[service], service


def test_the_kafka_endpoint_table_covers_the_event_source_and_its_failure_destination() -> None:
    rows = table_rows(DEPLOY_DOC.read_text(), KAFKA_TABLE)
    documented = {re.sub(r"^com\.amazonaws\.<region>\.", "", row[0]): row[1] for row in rows}
    # Lambda and STS always (the mapping invokes the function under its role); Secrets Manager for SASL/mTLS.
    assert {"lambda", "sts", "secretsmanager"} <= set(documented)
    destinations = {
        destination_service(template, resource["Properties"]["DestinationConfig"]["OnFailure"]["Destination"])
        for template in synth_example().templates.values()
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping"
        and str(resource["Properties"].get("EventSourceArn", "")).startswith("arn:aws:kafka:")
        and "DestinationConfig" in resource["Properties"]
    }
    assert destinations, "the router's Kafka event source has no on-failure destination"
    for service in destinations:
        assert service in documented, f"the Kafka event source's on-failure destination ({service}) has no endpoint"
        assert documented[service] == ("gateway" if service in GATEWAY_SERVICES else "interface"), service


def test_table_rows_reads_the_cells_of_the_table_after_a_heading(tmp_path: Path) -> None:
    doc = "## x\n### T\ntext\n\n| a | b |\n|---|---|\n| `sqs` | one, two |\n\nafter\n| c | d |\n"
    assert table_rows(doc, "### T") == [["sqs", "one, two"]]
