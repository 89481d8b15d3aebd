"""Resource types moto's CloudFormation skips, created through their service APIs from the template's own
properties (`adapters()`), and the property rewrites moto's own models need (`MOTO_QUIRKS`)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from tests.infrastructure.rehearsal.records import PSEUDO_PARTITION, Created, RehearsalError

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


# Resource type -> a rewrite of its properties for moto only; the meaning is unchanged (decision 057).
MOTO_QUIRKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "AWS::KMS::Key": _kms_key_tags_as_kms_api,
    "AWS::SSM::Parameter": _ssm_parameter_tags_as_list,
}
