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

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

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


# ----------------------------------------------------------------------------- assets and bootstrap
def bootstrap_account(region: str) -> None:
    """The parts of a CDK bootstrap the templates touch: the version parameter (the bucket comes with assets)."""
    boto3.client("ssm", region_name=region).put_parameter(
        Name=BOOTSTRAP_VERSION_PARAMETER, Value=BOOTSTRAP_VERSION, Type="String", Overwrite=True
    )


def publish_assets(assembly_dir: Path, region: str) -> int:
    """Do what `cdk-assets` does for every `*.assets.json`: zip directories, copy files, into their bucket."""
    s3 = boto3.client("s3", region_name=region)
    buckets: set[str] = set()
    published = 0
    for manifest_path in sorted(assembly_dir.glob("*.assets.json")):
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("dockerImages"):
            raise RehearsalError(f"{manifest_path.name}: Docker image assets are not rehearsed")
        for asset in manifest.get("files", {}).values():
            source = assembly_dir / asset["source"]["path"]
            if asset["source"].get("packaging") == "zip" or source.is_dir():
                body = _zip_directory(source)
            else:
                body = source.read_bytes()
            for destination in asset["destinations"].values():
                bucket = destination["bucketName"]
                if bucket not in buckets:
                    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
                        s3.create_bucket(Bucket=bucket)
                    buckets.add(bucket)
                s3.put_object(Bucket=bucket, Key=destination["objectKey"], Body=body)
                published += 1
    return published


def _zip_directory(directory: Path) -> bytes:
    buffer = io.BytesIO()
    # Stored, not deflated: the layer is ~60 MB and the rehearsal only needs a valid archive.
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())
    return buffer.getvalue()


# ----------------------------------------------------------------------------- intrinsic functions
def _is_intrinsic(node: Any) -> bool:
    return isinstance(node, dict) and len(node) == 1 and next(iter(node)) in _INTRINSIC_KEYS


_INTRINSIC_KEYS = {
    "Ref",
    "Fn::GetAtt",
    "Fn::Join",
    "Fn::Sub",
    "Fn::Select",
    "Fn::Split",
    "Fn::ImportValue",
    "Fn::If",
    "Fn::Base64",
    "Fn::GetAZs",
    "Fn::FindInMap",
    "Fn::Cidr",
    "Fn::Length",
    "Fn::ToJsonString",
}


def _get_att(value: Any) -> tuple[str, str]:
    if isinstance(value, str):
        logical_id, _, attribute = value.partition(".")
        return logical_id, attribute
    return str(value[0]), str(value[1])


def referenced_logical_ids(node: Any) -> set[str]:
    """Logical ids a template fragment references through Ref, Fn::GetAtt or Fn::Sub."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str) and not value.startswith("AWS::"):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(_get_att(value)[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                local = set(value[1]) if isinstance(value, list) and len(value) > 1 else set()
                for name in re.findall(r"\$\{([^}!]+)\}", text):
                    if not name.startswith("AWS::") and name.split(".")[0] not in local:
                        found.add(name.split(".")[0])
                found |= referenced_logical_ids(value)
            else:
                found |= referenced_logical_ids(value)
    elif isinstance(node, list):
        for item in node:
            found |= referenced_logical_ids(item)
    return found


@dataclass
class Resolver:
    """Evaluates intrinsic functions for one stack; `outputs` maps a leaf expression's key to its value."""

    stack_name: str
    stack_id: str
    region: str
    account: str
    cfn_values: dict[str, str]  # _leaf_key(Ref/GetAtt of a CloudFormation-created resource) -> value
    created: dict[str, Created]  # adapter results, by logical id
    exports: dict[str, str]
    where: str = ""

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if not _is_intrinsic(node):
            return {key: self.resolve(value) for key, value in node.items()}
        ((function, argument),) = node.items()
        if function == "Ref":
            return self._ref(argument)
        if function == "Fn::GetAtt":
            return self._get_att(*_get_att(argument))
        if function == "Fn::ImportValue":
            name = self.resolve(argument)
            if name not in self.exports:
                raise RehearsalError(f"{self.where}: Fn::ImportValue {name!r} is not exported by any stack")
            return self.exports[name]
        if function == "Fn::Join":
            separator, items = argument
            return str(separator).join(str(item) for item in self.resolve(items))
        if function == "Fn::Select":
            index, items = argument
            return self.resolve(items)[int(self.resolve(index))]
        if function == "Fn::Split":
            separator, text = argument
            return str(self.resolve(text)).split(separator)
        if function == "Fn::Sub":
            return self._sub(argument)
        raise RehearsalError(f"{self.where}: the rehearsal does not evaluate {function}; add it to rehearsal.py")

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": PSEUDO_PARTITION,
            "AWS::URLSuffix": PSEUDO_URL_SUFFIX,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": self.stack_id,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.created:
            return self.created[name].physical_id
        key = _leaf_key({"Ref": name})
        if key in self.cfn_values:
            return self.cfn_values[key]
        raise RehearsalError(f"{self.where}: Ref {name} has no value (not created, or created later)")

    def _get_att(self, logical_id: str, attribute: str) -> str:
        if logical_id in self.created:
            attributes = self.created[logical_id].attributes
            if attribute not in attributes:
                raise RehearsalError(f"{self.where}: Fn::GetAtt {logical_id}.{attribute}: the adapter did not set it")
            return attributes[attribute]
        key = _leaf_key({"Fn::GetAtt": [logical_id, attribute]})
        if key in self.cfn_values:
            return self.cfn_values[key]
        raise RehearsalError(f"{self.where}: Fn::GetAtt {logical_id}.{attribute} has no value")

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
        values = {name: self.resolve(value) for name, value in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return str(values[name])
            if "." in name:
                return str(self._get_att(*name.split(".", 1)))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def _leaf_key(node: dict[str, Any]) -> str:
    """A stable output key for one Ref/GetAtt expression (output keys are alphanumeric, <= 255)."""
    digest = hashlib.sha256(json.dumps(node, sort_keys=True).encode()).hexdigest()[:24]
    return f"{OUTPUT_PREFIX}{digest}"


def _cfn_leaves(node: Any, cloudformation_ids: set[str]) -> Iterator[dict[str, Any]]:
    """Every Ref/GetAtt (also inside Fn::Sub) of a CloudFormation-created resource within `node`."""
    if isinstance(node, list):
        for item in node:
            yield from _cfn_leaves(item, cloudformation_ids)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and value in cloudformation_ids:
                yield {"Ref": value}
            elif key == "Fn::GetAtt" and _get_att(value)[0] in cloudformation_ids:
                yield {"Fn::GetAtt": list(_get_att(value))}
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                for name in re.findall(r"\$\{([^}!]+)\}", text):
                    logical_id, _, attribute = name.partition(".")
                    if logical_id in cloudformation_ids:
                        yield {"Fn::GetAtt": [logical_id, attribute]} if attribute else {"Ref": logical_id}
                if isinstance(value, list):
                    yield from _cfn_leaves(value[1:], cloudformation_ids)
            else:
                yield from _cfn_leaves(value, cloudformation_ids)


# ----------------------------------------------------------------------------- adapters, by resource type
Adapter = Callable[[str, str, dict[str, Any]], Created]  # (stack name, logical id, resolved properties)


def _generated_name(stack_name: str, logical_id: str, limit: int = 255) -> str:
    """The name CloudFormation generates when a template leaves it open: <stack>-<logical id>-<suffix>."""
    suffix = hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()[:12].upper()
    return f"{stack_name}-{logical_id}"[: limit - 13] + f"-{suffix}"


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _sns_subscription(region: str) -> Adapter:
    def create(stack: str, logical_id: str, props: dict[str, Any]) -> Created:
        attributes = {"RawMessageDelivery": str(props.get("RawMessageDelivery", False)).lower()}
        for name in ("FilterPolicy", "RedrivePolicy", "DeliveryPolicy", "ReplayPolicy"):
            if name in props:
                attributes[name] = _json(props[name])
        if "FilterPolicyScope" in props:
            attributes["FilterPolicyScope"] = props["FilterPolicyScope"]
        arn = boto3.client("sns", region_name=region).subscribe(
            TopicArn=props["TopicArn"],
            Protocol=props["Protocol"],
            Endpoint=props["Endpoint"],
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        return Created(physical_id=arn, attributes={"Arn": arn})

    return create


def _sqs_queue_policy(region: str) -> Adapter:
    def create(stack: str, logical_id: str, props: dict[str, Any]) -> Created:
        sqs = boto3.client("sqs", region_name=region)
        for queue_url in props["Queues"]:
            sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": _json(props["PolicyDocument"])})
        return Created(physical_id=_generated_name(stack, logical_id))

    return create


def _sns_topic_policy(region: str) -> Adapter:
    def create(stack: str, logical_id: str, props: dict[str, Any]) -> Created:
        sns = boto3.client("sns", region_name=region)
        for topic_arn in props["Topics"]:
            sns.set_topic_attributes(
                TopicArn=topic_arn, AttributeName="Policy", AttributeValue=_json(props["PolicyDocument"])
            )
        return Created(physical_id=_generated_name(stack, logical_id))

    return create


def _s3_bucket_policy(region: str) -> Adapter:
    def create(stack: str, logical_id: str, props: dict[str, Any]) -> Created:
        boto3.client("s3", region_name=region).put_bucket_policy(
            Bucket=props["Bucket"], Policy=_json(props["PolicyDocument"])
        )
        return Created(physical_id=props["Bucket"])

    return create


def _cloudwatch_alarm(region: str, account: str) -> Adapter:
    def create(stack: str, logical_id: str, props: dict[str, Any]) -> Created:
        # The CloudFormation properties are PutMetricAlarm's parameters; botocore rejects any that is not.
        parameters = dict(props)
        name = parameters.pop("AlarmName", None) or _generated_name(stack, logical_id)
        boto3.client("cloudwatch", region_name=region).put_metric_alarm(AlarmName=name, **parameters)
        arn = f"arn:{PSEUDO_PARTITION}:cloudwatch:{region}:{account}:alarm:{name}"
        return Created(physical_id=name, attributes={"Arn": arn})

    return create


def _cloudwatch_dashboard(region: str) -> Adapter:
    def create(stack: str, logical_id: str, props: dict[str, Any]) -> Created:
        name = props.get("DashboardName") or _generated_name(stack, logical_id)
        json.loads(props["DashboardBody"])  # a body that is not JSON fails here, as PutDashboard would
        boto3.client("cloudwatch", region_name=region).put_dashboard(
            DashboardName=name, DashboardBody=props["DashboardBody"]
        )
        return Created(physical_id=name)

    return create


def _lambda_event_invoke_config(region: str) -> Adapter:
    def create(stack: str, logical_id: str, props: dict[str, Any]) -> Created:
        boto3.client("lambda", region_name=region).put_function_event_invoke_config(**props)
        return Created(physical_id=_generated_name(stack, logical_id))

    return create


def _sdk_call(region: str) -> Adapter:
    """Custom::AWS (AwsCustomResource): perform its `Create` SDK call, as the provider function would."""

    def create(stack: str, logical_id: str, props: dict[str, Any]) -> Created:
        call = json.loads(props["Create"]) if isinstance(props["Create"], str) else props["Create"]
        service = str(call["service"]).removeprefix("@aws-sdk/client-").replace("-", "").lower()
        action = re.sub(r"(?<!^)(?=[A-Z])", "_", str(call["action"]).removesuffix("Command")).lower()
        if service not in boto3.session.Session().get_available_services():
            raise RehearsalError(f"{stack}/{logical_id}: SDK service {call['service']!r} has no boto3 client")
        make_client: Any = boto3.client  # typed per literal service name; this one is read from the template
        response = getattr(make_client(service, region_name=region), action)(**call.get("parameters", {}))
        if service == "dynamodb" and response.get("UnprocessedItems"):
            raise RehearsalError(f"{stack}/{logical_id}: {action} left items unprocessed")
        physical = call.get("physicalResourceId", {}).get("id") or _generated_name(stack, logical_id)
        return Created(physical_id=physical)

    return create


def _kafka_event_source_mapping(region: str) -> Adapter:
    """moto's Lambda accepts only SQS, DynamoDB and Kinesis sources, so an MSK mapping cannot be created.

    What moto can show is checked instead: the properties are valid CreateEventSourceMapping parameters
    (botocore's input model), the function exists, and the on-failure destination exists.
    """

    def validate(stack: str, logical_id: str, props: dict[str, Any]) -> Created:
        from botocore.validate import ParamValidator

        parameters = dict(props)
        if isinstance(parameters.get("Tags"), list):
            parameters["Tags"] = {tag["Key"]: tag["Value"] for tag in parameters["Tags"]}
        client = boto3.client("lambda", region_name=region)
        shape = client.meta.service_model.operation_model("CreateEventSourceMapping").input_shape
        assert shape is not None
        report = ParamValidator().validate(parameters, shape)
        if report.has_errors():
            raise RehearsalError(
                f"{stack}/{logical_id}: not valid CreateEventSourceMapping input: {report.generate_report()}"
            )
        client.get_function(FunctionName=parameters["FunctionName"])
        destination = parameters.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if destination:
            _assert_destination_exists(region, destination)
        return Created(physical_id=f"(validated, not created: moto has no MSK event source) {logical_id}")

    return validate


def _assert_destination_exists(region: str, arn: str) -> None:
    service = arn.split(":")[2]
    if service == "s3":
        boto3.client("s3", region_name=region).head_bucket(Bucket=arn.split(":")[-1])
    elif service == "sqs":
        boto3.client("sqs", region_name=region).get_queue_url(QueueName=arn.split(":")[-1])
    elif service == "sns":
        boto3.client("sns", region_name=region).get_topic_attributes(TopicArn=arn)
    else:
        raise RehearsalError(f"on-failure destination {arn}: the rehearsal does not know how to find it")


def _is_kafka_source(properties: dict[str, Any]) -> bool:
    source = properties.get("EventSourceArn")
    return "SelfManagedEventSource" in properties or (isinstance(source, str) and source.startswith("arn:aws:kafka:"))


@dataclass(frozen=True)
class AdapterSpec:
    create: Adapter
    # Deferred to the adapter only for these resources of the type (default: all of them).
    applies: Callable[[dict[str, Any]], bool] = lambda properties: True
    # Checked, not created: moto cannot hold the resource at all (the test lists exactly which).
    validates_only: bool = False


def adapters(region: str, account: str) -> dict[str, AdapterSpec]:
    """Resource type -> how to create it through its service API (types moto's CloudFormation skips)."""
    return {
        "AWS::SNS::Subscription": AdapterSpec(_sns_subscription(region)),
        "AWS::SQS::QueuePolicy": AdapterSpec(_sqs_queue_policy(region)),
        "AWS::SNS::TopicPolicy": AdapterSpec(_sns_topic_policy(region)),
        "AWS::S3::BucketPolicy": AdapterSpec(_s3_bucket_policy(region)),
        "AWS::CloudWatch::Alarm": AdapterSpec(_cloudwatch_alarm(region, account)),
        # moto's CloudFormation models dashboards, but this one reads alarm ARNs, which are deferred.
        "AWS::CloudWatch::Dashboard": AdapterSpec(_cloudwatch_dashboard(region), applies=lambda properties: False),
        "AWS::Lambda::EventInvokeConfig": AdapterSpec(_lambda_event_invoke_config(region)),
        "AWS::Lambda::EventSourceMapping": AdapterSpec(
            _kafka_event_source_mapping(region), applies=_is_kafka_source, validates_only=True
        ),
        "Custom::AWS": AdapterSpec(_sdk_call(region)),
    }


# ----------------------------------------------------------------------------- moto's own defects
def _kms_key_tags_as_kms_api(properties: dict[str, Any]) -> dict[str, Any]:
    # moto hands the CloudFormation `Tags` (Key/Value) to its CreateKey, which reads TagKey/TagValue.
    tags = properties.get("Tags", [])
    return {**properties, "Tags": [{"TagKey": tag["Key"], "TagValue": tag["Value"]} for tag in tags]}


def _ssm_parameter_tags_as_list(properties: dict[str, Any]) -> dict[str, Any]:
    # AWS::SSM::Parameter's Tags are a JSON map; moto's CloudFormation model reads a Key/Value list.
    tags = properties.get("Tags", {})
    if isinstance(tags, dict):
        return {**properties, "Tags": [{"Key": key, "Value": value} for key, value in tags.items()]}
    return properties


# Resource type -> a rewrite of its properties for moto only; the meaning is unchanged (decision 057).
MOTO_QUIRKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "AWS::KMS::Key": _kms_key_tags_as_kms_api,
    "AWS::SSM::Parameter": _ssm_parameter_tags_as_list,
}


# ----------------------------------------------------------------------------- deploying one stack
def _depends_on(resource: dict[str, Any]) -> set[str]:
    value = resource.get("DependsOn", [])
    return {value} if isinstance(value, str) else set(value)


def split_template(template: dict[str, Any], by_type: dict[str, AdapterSpec]) -> tuple[set[str], set[str]]:
    """(logical ids for CloudFormation, logical ids for adapters): the deferred set is closed under reference."""
    resources = template["Resources"]
    deferred = {
        logical_id
        for logical_id, resource in resources.items()
        if resource["Type"] in by_type and by_type[resource["Type"]].applies(resource.get("Properties", {}))
    }
    changed = True
    while changed:
        changed = False
        for logical_id, resource in resources.items():
            if logical_id in deferred:
                continue
            if referenced_logical_ids(resource.get("Properties", {})) & deferred:
                deferred.add(logical_id)
                changed = True
    return set(resources) - deferred, deferred


def _creation_order(resources: dict[str, Any], deferred: set[str]) -> list[str]:
    order: list[str] = []
    visiting: set[str] = set()

    def visit(logical_id: str) -> None:
        if logical_id in order:
            return
        if logical_id in visiting:
            raise RehearsalError(f"dependency cycle through {logical_id}")
        visiting.add(logical_id)
        resource = resources[logical_id]
        needs = referenced_logical_ids(resource.get("Properties", {})) | _depends_on(resource)
        for other in sorted(needs & deferred):
            visit(other)
        visiting.discard(logical_id)
        order.append(logical_id)

    for logical_id in sorted(deferred):
        visit(logical_id)
    return order


def deploy_stack(stack_name: str, template: dict[str, Any], *, region: str, account: str) -> StackDeployment:
    """Create one stack: the CloudFormation part with create_stack, then the deferred part through the APIs."""
    by_type = adapters(region, account)
    for logical_id, resource in template["Resources"].items():
        kind = resource["Type"]
        if kind.startswith("Custom::") and kind not in by_type:
            raise RehearsalError(f"{stack_name}/{logical_id}: custom resource type {kind} has no adapter")
    cloudformation_ids, deferred = split_template(template, by_type)
    for logical_id in sorted(deferred):
        kind = template["Resources"][logical_id]["Type"]
        if kind not in by_type:
            raise RehearsalError(
                f"{stack_name}/{logical_id}: {kind} references a resource created through the API, "
                "and the rehearsal has no adapter for its type"
            )

    cfn_template = copy.deepcopy(template)
    for logical_id in deferred:
        del cfn_template["Resources"][logical_id]
    for resource in cfn_template["Resources"].values():
        if resource["Type"] in MOTO_QUIRKS:
            resource["Properties"] = MOTO_QUIRKS[resource["Type"]](resource.get("Properties", {}))
        remaining = _depends_on(resource) - deferred
        if "DependsOn" in resource:
            resource["DependsOn"] = sorted(remaining)
    leaves = {
        _leaf_key(leaf): leaf
        for logical_id in deferred
        for leaf in _cfn_leaves(template["Resources"][logical_id].get("Properties", {}), cloudformation_ids)
    }
    cfn_template.setdefault("Outputs", {}).update({key: {"Value": leaf} for key, leaf in leaves.items()})

    cloudformation = boto3.client("cloudformation", region_name=region)
    stack_id = cloudformation.create_stack(StackName=stack_name, TemplateBody=json.dumps(cfn_template))["StackId"]
    stack = cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise RehearsalError(f"{stack_name}: {stack['StackStatus']} {stack.get('StackStatusReason', '')}")
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    # A type moto does not model is still listed CREATE_COMPLETE, but without a logical id or type.
    # (Some modelled ones, layer versions and permissions, have no physical id in moto: that is fine.)
    listed = {
        summary["LogicalResourceId"]: summary
        for summary in cloudformation.describe_stack_resources(StackName=stack_id)["StackResources"]
        if summary.get("LogicalResourceId") and summary.get("ResourceType")
    }
    by_cloudformation = {
        logical_id: listed[logical_id]["ResourceType"]
        for logical_id in cloudformation_ids
        if logical_id in listed and listed[logical_id]["ResourceStatus"] == "CREATE_COMPLETE"
    }

    created: dict[str, Created] = {}
    validated_only: dict[str, str] = {}
    resolver = Resolver(
        stack_name=stack_name,
        stack_id=stack_id,
        region=region,
        account=account,
        cfn_values={key: value for key, value in outputs.items() if key.startswith(OUTPUT_PREFIX)},
        created=created,
        exports=exports(region),
    )
    for logical_id in _creation_order(template["Resources"], deferred):
        resource = template["Resources"][logical_id]
        resolver.where = f"{stack_name}/{logical_id} ({resource['Type']})"
        properties = resolver.resolve(resource.get("Properties", {}))
        try:
            spec = by_type[resource["Type"]]
            created[logical_id] = spec.create(stack_name, logical_id, properties)
            if spec.validates_only:
                validated_only[logical_id] = resource["Type"]
        except RehearsalError:
            raise
        except Exception as error:  # the service API refused the template's own properties: say which
            raise RehearsalError(f"{resolver.where}: {type(error).__name__}: {error}") from error
    return StackDeployment(
        stack_name=stack_name,
        by_cloudformation=by_cloudformation,
        by_adapter={key: value for key, value in created.items() if key not in validated_only},
        validated_only=validated_only,
        outputs={key: value for key, value in outputs.items() if not key.startswith(OUTPUT_PREFIX)},
    )


def exports(region: str) -> dict[str, str]:
    cloudformation = boto3.client("cloudformation", region_name=region)
    found: dict[str, str] = {}
    for page in cloudformation.get_paginator("list_exports").paginate():
        found.update({export["Name"]: export["Value"] for export in page["Exports"]})
    return found


def unaccounted(template: dict[str, Any], deployment: StackDeployment) -> dict[str, str]:
    """Logical id -> type of every resource neither CloudFormation nor an adapter created."""
    return {
        logical_id: resource["Type"]
        for logical_id, resource in template["Resources"].items()
        if logical_id not in deployment.by_cloudformation
        and logical_id not in deployment.by_adapter
        and logical_id not in deployment.validated_only
    }


def deployment_order(templates: dict[str, dict[str, Any]]) -> list[str]:
    """Stacks in an order where each one's Fn::ImportValue names are exported by an earlier one."""
    exported = {
        name: {
            str(output["Export"]["Name"]) if isinstance(output["Export"]["Name"], str) else json.dumps(output)
            for output in template.get("Outputs", {}).values()
            if "Export" in output
        }
        for name, template in templates.items()
    }
    imports = {name: set(_imported_names(template)) for name, template in templates.items()}
    order: list[str] = []
    remaining = set(templates)
    while remaining:
        ready = sorted(
            name for name in remaining if imports[name] <= {export for done in order for export in exported[done]}
        )
        if not ready:
            raise RehearsalError(f"no stack order satisfies the imports of {sorted(remaining)}")
        order.extend(ready)
        remaining -= set(ready)
    return order


def _imported_names(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::ImportValue" and isinstance(value, str):
                yield value
            else:
                yield from _imported_names(value)
    elif isinstance(node, list):
        for item in node:
            yield from _imported_names(item)
