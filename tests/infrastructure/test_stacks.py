"""The synthesized example app: the wiring that matters, cdk-nag, cfn-lint, resource limits.

One synth per session (`tests.synth.synth_example`); every test here runs on the same xdist worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infrastructure.config import MAX_CHALLENGES_PER_STACK, parse_environment
from infrastructure.stacks.pipeline import shard_stack_name
from infrastructure.wiring import (
    CHALLENGE_BATCH_SIZE,
    MAX_RECEIVE_COUNT,
    VISIBILITY_TIMEOUT_FACTOR,
    ResourceRefs,
    WiringPlan,
    dynamodb_item,
)
from mm_contracts.metric_names import Metric
from mm_contracts.models.challenge import ScorerCredentialsMode
from mm_contracts.names import STATUS_TABLE_TTL_ATTRIBUTE, static_token_parameter_name
from mm_contracts.settings import (
    ChallengeProcessorSettings,
    CompletionSettings,
    EnvSettings,
    RouterSettings,
    TimeoutSweeperSettings,
)
from mm_contracts.tables import (
    AUDIT_MARKS_TTL_ATTRIBUTE,
    audit_marks_table_definition,
    challenge_table_definition,
    status_table_definition,
)
from tests.synth import Synthesized, synth, synth_example

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]
REPO = Path(__file__).resolve().parents[2]
IAM_ROLE_INLINE_POLICY_LIMIT = 10_240  # characters, all inline policies of one role together


@pytest.fixture(scope="session")
def synthesized() -> Synthesized:
    return synth_example()


@pytest.fixture(scope="session")
def plan(synthesized: Synthesized) -> WiringPlan:
    return WiringPlan(synthesized.config)


def resources(template: dict[str, Any], type_: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == type_:
            yield logical_id, resource


def all_resources(synthesized: Synthesized, type_: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (stack, logical_id, resource)
        for stack, template in synthesized.templates.items()
        for logical_id, resource in resources(template, type_)
    ]


def by_name(synthesized: Synthesized, type_: str, name_property: str) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {
        r["Properties"][name_property]: (stack, lid, r)
        for stack, lid, r in all_resources(synthesized, type_)
        if isinstance(r["Properties"].get(name_property), str)
    }


def functions(synthesized: Synthesized) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return by_name(synthesized, "AWS::Lambda::Function", "FunctionName")


def role_statements(template: dict[str, Any], role_logical_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    # Function roles carry their statements inline (decision 048); other roles may use AWS::IAM::Policy.
    for inline in template["Resources"][role_logical_id]["Properties"].get("Policies", []):
        statements.extend(inline["PolicyDocument"]["Statement"])
    for _, policy in resources(template, "AWS::IAM::Policy"):
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements_for(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if action in as_list(s["Action"])]


# ------------------------------------------------------------------ checks
def test_example_synthesizes_offline_with_zero_unacknowledged_nag_findings(
    synthesized: Synthesized, plan: WiringPlan
) -> None:
    # Given the example app synthesized with AwsSolutions + Serverless checks (a finding fails synth)
    report = json.loads((synthesized.assembly_dir / "validation-report.json").read_text())
    # Then no plugin reported anything, and there is one core stack plus one per non-empty shard
    assert report["pluginReports"] == []
    shards = [shard_stack_name("example", shard) for shard in plan.challenge_shards()]
    assert sorted(synthesized.templates) == sorted(["mm-example-core", *shards])


def test_nag_acknowledgements_are_scoped_and_reasoned(synthesized: Synthesized) -> None:
    found: list[tuple[str, str, str]] = []
    for metadata_file in synthesized.assembly_dir.glob("*.metadata.json"):
        for path, entries in json.loads(metadata_file.read_text()).items():
            for entry in entries:
                if entry["type"] == "aws:cdk:acknowledged-rules":
                    found.extend((path, rule, reason) for rule, reason in entry["data"].items())
    assert len(found) > 20
    for path, rule, reason in found:
        # on a construct below the stack, never the whole stack
        assert path.count("/") >= 2, (path, rule)
        # IAM wildcard / managed-policy findings only ever acknowledged one finding at a time
        if "IAM5" in rule or "IAM4" in rule:
            assert rule.endswith("]"), (path, rule)
        assert len(reason) >= 20, (path, rule)


def test_cfn_lint_reports_no_errors_on_any_template(synthesized: Synthesized) -> None:
    files = sorted(str(p) for p in synthesized.assembly_dir.glob("*.template.json"))
    assert len(files) == len(synthesized.templates)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "json", "--", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    errors = [f for f in findings if f["Level"] == "Error"]
    assert errors == [], errors


def test_every_stack_stays_under_the_cloudformation_resource_limit(synthesized: Synthesized) -> None:
    for stack, template in synthesized.templates.items():
        assert len(template["Resources"]) < 500, stack


def test_two_hundred_challenges_shard_into_stacks_under_500_resources() -> None:
    # Given 200 challenges generated from the example, pinned so that shards are full (challengesPerStack at its
    # maximum), with a maxConcurrency the account's default concurrency can serve (200 x 4 <= 1000 - reserved)
    raw = json.loads((REPO / "infrastructure" / "config" / "example.json").read_text())
    template = raw["challenges"][0]
    raw["challenges"] = [
        {
            **template,
            "challengeId": f"30a1c2d4-5b6e-4f70-8a91-{i:012x}",
            "name": f"MM {i}",
            "maxConcurrency": 4,
            "shard": i // MAX_CHALLENGES_PER_STACK + 1,
        }
        for i in range(200)
    ]
    raw["challengesPerStack"] = MAX_CHALLENGES_PER_STACK
    config = parse_environment(raw)
    # When synthesized (without the checks: the example synth covers them; same constructs)
    result = synth(config, label="scale", checks=False)
    # Then every challenge has a processor, and no stack reaches 500 resources
    counts = {stack: len(t["Resources"]) for stack, t in result.templates.items()}
    assert len(counts) == 1 + -(-200 // MAX_CHALLENGES_PER_STACK)
    assert max(counts.values()) < 500, counts
    processors = [
        r
        for t in result.templates.values()
        for _, r in resources(t, "AWS::Lambda::Function")
        if "-ch-" in str(r["Properties"].get("FunctionName"))
    ]
    assert len(processors) == 200
    # and no role's inline policies (decision 048: every statement is inline) grow toward IAM's 10,240-character
    # limit for a role's inline policies with the number of challenges
    # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html)
    inline = {
        (stack, logical_id): sum(
            len(json.dumps(p["PolicyDocument"], separators=(",", ":"))) for p in r["Properties"].get("Policies", [])
        )
        for stack, t in result.templates.items()
        for logical_id, r in resources(t, "AWS::IAM::Role")
    }
    assert max(inline.values()) < IAM_ROLE_INLINE_POLICY_LIMIT / 2, max(inline.items(), key=lambda kv: kv[1])


# ------------------------------------------------------------------ fan-out
def test_each_challenge_has_a_filtered_raw_subscription_and_a_dlq(synthesized: Synthesized, plan: WiringPlan) -> None:
    queues = by_name(synthesized, "AWS::SQS::Queue", "QueueName")
    subscriptions = [r for _, _, r in all_resources(synthesized, "AWS::SNS::Subscription")]
    for challenge in plan.config.challenges:
        queue_plan = plan.queue_plan(challenge)
        _stack, queue_id, queue = queues[queue_plan.queue_name]
        _, dlq_id, dlq = queues[queue_plan.dlq_name]
        # the queue redrives to its own DLQ after maxReceiveCount receives
        redrive = queue["Properties"]["RedrivePolicy"]
        assert redrive == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}, "maxReceiveCount": 3}
        assert dlq["Properties"]["MessageRetentionPeriod"] == 14 * 86_400
        assert queue["Properties"]["MessageRetentionPeriod"] == 7 * 86_400
        # exactly one subscription delivers to it, raw, with the plan's filter policy
        mine = [s for s in subscriptions if s["Properties"]["Endpoint"] == {"Fn::GetAtt": [queue_id, "Arn"]}]
        assert len(mine) == 1
        assert mine[0]["Properties"]["FilterPolicy"] == queue_plan.filter_policy
        assert mine[0]["Properties"]["RawMessageDelivery"] is True
        assert mine[0]["Properties"]["Protocol"] == "sqs"
        assert "RedrivePolicy" in mine[0]["Properties"]  # undeliverable -> fan-out DLQ
    assert MAX_RECEIVE_COUNT == 3


def test_queue_visibility_is_at_least_six_times_the_processor_timeout(
    synthesized: Synthesized, plan: WiringPlan
) -> None:
    queues = by_name(synthesized, "AWS::SQS::Queue", "QueueName")
    fns = functions(synthesized)
    for challenge in plan.config.challenges:
        timeout = fns[plan.names.challenge_function(challenge.challenge_id)][2]["Properties"]["Timeout"]
        visibility = queues[plan.names.challenge_queue(challenge.challenge_id)][2]["Properties"]["VisibilityTimeout"]
        assert visibility >= VISIBILITY_TIMEOUT_FACTOR * timeout


def test_one_customer_managed_rotating_key_encrypts_topic_and_every_queue(synthesized: Synthesized) -> None:
    core = synthesized.templates["mm-example-core"]
    keys = list(resources(core, "AWS::KMS::Key"))
    assert len(keys) == 1
    key_id, key = keys[0]
    assert key["Properties"]["EnableKeyRotation"] is True
    for stack, _, queue in all_resources(synthesized, "AWS::SQS::Queue"):
        key_ref = queue["Properties"]["KmsMasterKeyId"]
        assert key_id in json.dumps(key_ref), stack
    for _, topic in resources(core, "AWS::SNS::Topic"):
        assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_topics_and_queues_deny_requests_without_tls(synthesized: Synthesized) -> None:
    def denies_insecure(statements: list[dict[str, Any]]) -> bool:
        return any(
            s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            for s in statements
        )

    queue_ids: set[str] = set()
    for _, _, policy in all_resources(synthesized, "AWS::SQS::QueuePolicy"):
        if denies_insecure(policy["Properties"]["PolicyDocument"]["Statement"]):
            for queue in policy["Properties"]["Queues"]:
                queue_ids.add(json.dumps(queue))
    for stack, lid, _ in all_resources(synthesized, "AWS::SQS::Queue"):
        assert any(lid in q for q in queue_ids), (stack, lid)
    topic_policies = [p for _, _, p in all_resources(synthesized, "AWS::SNS::TopicPolicy")]
    assert len(topic_policies) == 2
    assert all(denies_insecure(p["Properties"]["PolicyDocument"]["Statement"]) for p in topic_policies)


# ------------------------------------------------------------------ router
def test_kafka_event_source_runs_in_provisioned_mode_with_bounded_retries(
    synthesized: Synthesized, plan: WiringPlan
) -> None:
    core = synthesized.templates["mm-example-core"]
    (esm,) = [r["Properties"] for _, r in resources(core, "AWS::Lambda::EventSourceMapping")]
    source = plan.kafka_source()
    failure_bucket = next(
        lid
        for lid, b in resources(core, "AWS::S3::Bucket")
        if b["Properties"]["BucketName"] == plan.names.router_failure_bucket(plan.config.account, plan.config.region)
    )
    assert esm["EventSourceArn"] == plan.config.kafka.cluster_arn
    assert esm["Topics"] == [source.topic]
    assert esm["AmazonManagedKafkaEventSourceConfig"] == {"ConsumerGroupId": source.consumer_group_id}
    assert esm["ProvisionedPollerConfig"] == {
        "MinimumPollers": source.minimum_pollers,
        "MaximumPollers": source.maximum_pollers,
    }
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["MaximumRetryAttempts"] == source.retry_attempts
    assert esm["MaximumRecordAgeInSeconds"] == source.max_record_age_seconds
    assert esm["BisectBatchOnFunctionError"] is True
    assert esm["BatchSize"] == source.batch_size
    assert esm["MaximumBatchingWindowInSeconds"] == source.batching_window_seconds
    assert esm["StartingPosition"] == source.starting_position
    assert esm["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [failure_bucket, "Arn"]}}}


def test_router_role_holds_only_what_the_router_does(synthesized: Synthesized, plan: WiringPlan) -> None:
    core = synthesized.templates["mm-example-core"]
    _stack, _lid, fn = functions(synthesized)["mm-example-router"]
    role_id = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    actions = {a for s in role_statements(core, role_id) for a in as_list(s["Action"])}
    assert actions == {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "ec2:CreateNetworkInterface",  # the router is in the VPC (decision 048)
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "sqs:SendMessage",  # the audit queue
        "s3:PutObject",  # the event source mapping's failure bucket (decision 055)
        "s3:ListBucket",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "kafka:DescribeCluster",
        "kafka:GetBootstrapBrokers",
        "kafka:ListScramSecrets",
        "sns:Publish",
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",  # audit marks only (decision 075)
        "kafka-cluster:Connect",
        "kafka-cluster:DescribeClusterDynamicConfiguration",
        "kafka-cluster:DescribeTopic",
        "kafka-cluster:ReadData",
        "kafka-cluster:DescribeGroup",
        "kafka-cluster:AlterGroup",
    }
    statements = role_statements(core, role_id)
    assert statements_for(statements, "kafka-cluster:ReadData")[0]["Resource"] == plan.kafka_topic_arn()
    assert statements_for(statements, "kafka-cluster:AlterGroup")[0]["Resource"] == plan.kafka_group_arn()


def test_router_audit_marks_table_expires_its_items_and_only_the_router_writes_it(
    synthesized: Synthesized, plan: WiringPlan
) -> None:
    # Decision 075: one mark per audited Kafka record, expiring by TTL; the router may read and write only it.
    core = synthesized.templates["mm-example-core"]
    stack, marks_id, marks = by_name(synthesized, "AWS::DynamoDB::Table", "TableName")[plan.names.audit_marks_table]
    assert stack == "mm-example-core"
    definition = audit_marks_table_definition(plan.names.audit_marks_table)
    assert marks["Properties"]["KeySchema"] == definition["KeySchema"]
    assert marks["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": AUDIT_MARKS_TTL_ATTRIBUTE,
        "Enabled": True,
    }
    _stack, _lid, fn = functions(synthesized)["mm-example-router"]
    assert fn["Properties"]["Environment"]["Variables"]["AUDIT_MARKS_TABLE_NAME"] == plan.names.audit_marks_table
    statements = role_statements(core, fn["Properties"]["Role"]["Fn::GetAtt"][0])
    (write,) = statements_for(statements, "dynamodb:BatchWriteItem")
    assert write["Resource"] == {"Fn::GetAtt": [marks_id, "Arn"]}


# ------------------------------------------------------------------ IAM
def test_no_statement_allows_a_wildcard_action(synthesized: Synthesized) -> None:
    for stack, template in synthesized.templates.items():
        documents = [(lid, p["Properties"]["PolicyDocument"]) for lid, p in resources(template, "AWS::IAM::Policy")]
        documents += [
            (lid, inline["PolicyDocument"])
            for lid, role in resources(template, "AWS::IAM::Role")
            for inline in role["Properties"].get("Policies", [])
        ]
        for lid, document in documents:
            for statement in document["Statement"]:
                for action in as_list(statement["Action"]):
                    assert action != "*", (stack, lid)
                    assert not action.endswith(":*"), (stack, lid, action)


def test_challenge_roles_are_scoped_to_their_own_challenge(synthesized: Synthesized, plan: WiringPlan) -> None:
    fns = functions(synthesized)
    cluster = plan.config.ecs.cluster_arn
    for challenge in plan.config.challenges:
        stack, _, fn = fns[plan.names.challenge_function(challenge.challenge_id)]
        statements = role_statements(synthesized.templates[stack], fn["Properties"]["Role"]["Fn::GetAtt"][0])
        (run_task,) = statements_for(statements, "ecs:RunTask")
        family = challenge.task_definition_family
        assert run_task["Resource"] == f"arn:aws:ecs:us-east-1:123456789012:task-definition/{family}:*"
        assert run_task["Condition"] == {"ArnEquals": {"ecs:cluster": cluster}}
        (tag,) = statements_for(statements, "ecs:TagResource")
        assert tag["Condition"] == {"StringEquals": {"ecs:CreateAction": "RunTask"}}
        (pass_role,) = statements_for(statements, "iam:PassRole")
        assert sorted(pass_role["Resource"]) == sorted([challenge.task_role_arn, challenge.execution_role_arn])
        parameters = [r for s in statements_for(statements, "ssm:GetParameter") for r in as_list(s["Resource"])]
        own = "arn:aws:ssm:us-east-1:123456789012:parameter" + plan.challenge_config_parameter(challenge.challenge_id)
        token = "arn:aws:ssm:us-east-1:123456789012:parameter" + static_token_parameter_name(plan.config.ssm_prefix)
        caps = "arn:aws:ssm:us-east-1:123456789012:parameter" + plan.capacity_parameter()  # decision 097
        # parameter_reference passes only the name: the scorer's own task role reads the token
        needs_token = challenge.scorer_credentials_mode is ScorerCredentialsMode.ENVIRONMENT_TOKEN_INSECURE
        assert sorted(parameters) == sorted([own, caps, token] if needs_token else [own, caps])
        # the status table (PutItem: a run is created WAITING; BatchGetItem: a member's other runs, decision 095)
        # and the capacity table (decision 097), each in its own statement
        status, capacity = statements_for(statements, "dynamodb:PutItem")
        assert sorted(as_list(status["Action"])) == [
            "dynamodb:BatchGetItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
        ]
        assert "dynamodb:ConditionCheckItem" in as_list(capacity["Action"])


def test_completion_and_sweeper_ecs_calls_are_conditioned_on_the_cluster(
    synthesized: Synthesized, plan: WiringPlan
) -> None:
    core = synthesized.templates["mm-example-core"]
    fns = functions(synthesized)
    cluster = plan.config.ecs.cluster_arn
    for name, action in (
        ("mm-example-completion", "ecs:DescribeTasks"),
        ("mm-example-timeout-sweeper", "ecs:StopTask"),
        ("mm-example-timeout-sweeper", "ecs:DescribeTasks"),  # reconciling lost STOPPED events
    ):
        statements = role_statements(core, fns[name][2]["Properties"]["Role"]["Fn::GetAtt"][0])
        (statement,) = statements_for(statements, action)
        assert statement["Condition"] == {"ArnEquals": {"ecs:cluster": cluster}}
        assert statement["Resource"] == "arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/*"
    sweeper = role_statements(core, fns["mm-example-timeout-sweeper"][2]["Properties"]["Role"]["Fn::GetAtt"][0])
    # The orphan scan (decision 071): ListTasks has no task resource, so `*`, held to the cluster by condition.
    (list_tasks,) = statements_for(sweeper, "ecs:ListTasks")
    assert list_tasks["Resource"] == "*"
    assert list_tasks["Condition"] == {"ArnEquals": {"ecs:cluster": cluster}}
    queries = [r for s in statements_for(sweeper, "dynamodb:Query") for r in as_list(s["Resource"])]
    assert any(str(r).endswith("/index/byStateDeadline") for r in queries)


def test_the_sweeper_may_invoke_the_completion_function_and_nothing_else(
    synthesized: Synthesized, plan: WiringPlan
) -> None:
    core = synthesized.templates["mm-example-core"]
    fns = functions(synthesized)
    completion_lid = fns[plan.names.completion_function][1]
    sweeper = role_statements(core, fns[plan.names.sweeper_function][2]["Properties"]["Role"]["Fn::GetAtt"][0])
    # exactly one statement, for exactly the completion function's unqualified ARN (no versions, no wildcard)
    (invoke,) = [s for s in sweeper if any(a.startswith("lambda:") for a in as_list(s["Action"]))]
    assert as_list(invoke["Action"]) == ["lambda:InvokeFunction"]
    assert invoke["Resource"] == {"Fn::GetAtt": [completion_lid, "Arn"]}
    # and the name it invokes is the completion function's (the sweeper's environment, from the plan)
    variables = fns[plan.names.sweeper_function][2]["Properties"]["Environment"]["Variables"]
    assert variables["COMPLETION_FUNCTION_NAME"] == plan.names.completion_function
    assert fns[plan.names.completion_function][2]["Properties"]["FunctionName"] == plan.names.completion_function
    # no other role in the pipeline may invoke it
    for name, (_, _, fn) in fns.items():
        if name == plan.names.sweeper_function or not name.startswith("mm-example-"):
            continue
        for stack, template in synthesized.templates.items():
            role = fn["Properties"]["Role"]
            if isinstance(role, dict) and "Fn::GetAtt" in role and role["Fn::GetAtt"][0] in template["Resources"]:
                statements = role_statements(template, role["Fn::GetAtt"][0])
                assert not statements_for(statements, "lambda:InvokeFunction"), (stack, name)


# ------------------------------------------------------------------ completion
def test_completion_rule_matches_the_plan_with_retries_and_a_dlq(synthesized: Synthesized, plan: WiringPlan) -> None:
    core = synthesized.templates["mm-example-core"]
    rules = {r["Properties"]["Name"]: r["Properties"] for _, r in resources(core, "AWS::Events::Rule")}
    rule = rules[plan.names.completion_rule]
    assert rule["EventPattern"] == plan.completion_rule_pattern()
    (target,) = rule["Targets"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] > 0
    dlq = next(
        lid
        for lid, q in resources(core, "AWS::SQS::Queue")
        if q["Properties"]["QueueName"] == "mm-example-completion-dlq"
    )
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq, "Arn"]}}
    schedule = rules[plan.names.sweeper_schedule]
    assert schedule["ScheduleExpression"] == f"rate({plan.config.sweeper_interval_minutes} minutes)"


# ------------------------------------------------------------------ functions
SETTINGS_MODELS: dict[str, type[EnvSettings]] = {
    "mm-example-router": RouterSettings,
    "mm-example-completion": CompletionSettings,
    "mm-example-timeout-sweeper": TimeoutSweeperSettings,
}


def test_each_function_environment_is_exactly_its_settings_model(synthesized: Synthesized, plan: WiringPlan) -> None:
    fns = functions(synthesized)
    models = dict(SETTINGS_MODELS)
    for challenge in plan.config.challenges:
        models[plan.names.challenge_function(challenge.challenge_id)] = ChallengeProcessorSettings
    refs = ResourceRefs("arn:aws:sns:us-east-1:123456789012:ref", "ref", "ref", "https://ref")
    planned: dict[str, EnvSettings] = {
        "mm-example-router": plan.router_settings(refs),
        "mm-example-completion": plan.completion_settings(refs),
        "mm-example-timeout-sweeper": plan.sweeper_settings(refs),
    }
    for challenge in plan.config.challenges:
        planned[plan.names.challenge_function(challenge.challenge_id)] = plan.challenge_settings(challenge, refs)
    for name, model in models.items():
        environment = fns[name][2]["Properties"]["Environment"]["Variables"]
        settings = planned[name]
        # Exactly the names the settings model emits for this environment ...
        assert set(environment) == set(settings.to_env()), name
        assert model.required_env_var_names() <= set(environment), name
        # ... and every name the model reads but the stack leaves unset is optional and unset in the plan.
        for unset in model.env_var_names() - set(environment):
            assert not model.model_fields[unset.lower()].is_required(), (name, unset)
            assert getattr(settings, unset.lower()) is None, (name, unset)
        # Plain (non-reference) values are the plan's values, not hand-written ones.
        for key, value in settings.to_env().items():
            if isinstance(environment[key], str) and value != "ref" and not value.startswith(("arn:", "https://ref")):
                assert environment[key] == value, (name, key)
    # and the names are exactly what the plan's settings model emits (nothing hand-written)
    challenge = plan.config.challenges[0]
    env = fns[plan.names.challenge_function(challenge.challenge_id)][2]["Properties"]["Environment"]["Variables"]
    assert env["CHALLENGE_ID"] == challenge.challenge_id
    assert env["CHALLENGE_CONFIG_PARAMETER"] == plan.challenge_config_parameter(challenge.challenge_id)
    assert env["POWERTOOLS_SERVICE_NAME"] == "challenge-processor"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "MMProcessor"


def test_every_function_is_python312_arm64_traced_logged_in_vpc_with_own_role_and_group(
    synthesized: Synthesized, plan: WiringPlan
) -> None:
    """Own role per function; own security group per core function, one per shard for its challenge processors."""
    pipeline = {n: f for n, f in functions(synthesized).items() if n.startswith("mm-example-")}
    assert len(pipeline) == 3 + 3
    roles, groups = set(), set()
    log_groups = by_name(synthesized, "AWS::Logs::LogGroup", "LogGroupName")
    for name, (stack, _, fn) in pipeline.items():
        props = fn["Properties"]
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert len(props["Layers"]) == 1
        assert log_groups[f"/aws/lambda/{name}"][2]["Properties"]["RetentionInDays"] == 30
        assert sorted(props["VpcConfig"]["SubnetIds"]) == ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"]
        roles.add(json.dumps(props["Role"]))
        groups.add((stack, json.dumps(props["VpcConfig"]["SecurityGroupIds"])))
    assert len(roles) == len(pipeline)
    assert len(groups) == 3 + len(plan.challenge_shards())


def test_challenge_processors_consume_their_queue_with_partial_batch_responses(
    synthesized: Synthesized, plan: WiringPlan
) -> None:
    for challenge in plan.config.challenges:
        stack, _, fn = functions(synthesized)[plan.names.challenge_function(challenge.challenge_id)]
        template = synthesized.templates[stack]
        fn_id = next(lid for lid, r in resources(template, "AWS::Lambda::Function") if r is fn)
        (esm,) = [
            r["Properties"]
            for _, r in resources(template, "AWS::Lambda::EventSourceMapping")
            if r["Properties"]["FunctionName"] == {"Ref": fn_id}
        ]
        assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert esm["BatchSize"] == CHALLENGE_BATCH_SIZE
        assert esm["ScalingConfig"] == {"MaximumConcurrency": challenge.max_concurrency}


# ------------------------------------------------------------------ data
def test_tables_match_the_shared_definitions(synthesized: Synthesized, plan: WiringPlan) -> None:
    tables = by_name(synthesized, "AWS::DynamoDB::Table", "TableName")
    for definition in (
        status_table_definition(plan.names.status_table),
        challenge_table_definition(plan.names.challenge_table),
    ):
        _, _, table = tables[definition["TableName"]]
        props = table["Properties"]
        assert props["KeySchema"] == definition["KeySchema"]
        assert sorted(props["AttributeDefinitions"], key=str) == sorted(definition["AttributeDefinitions"], key=str)
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props.get("GlobalSecondaryIndexes", []) == definition.get("GlobalSecondaryIndexes", [])
    status = tables[plan.names.status_table][2]
    assert status["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": STATUS_TABLE_TTL_ATTRIBUTE,
        "Enabled": True,
    }
    assert status["DeletionPolicy"] == "Retain"


def test_each_challenge_config_parameter_and_rows_are_written_from_the_plan(
    synthesized: Synthesized, plan: WiringPlan
) -> None:
    parameters = by_name(synthesized, "AWS::SSM::Parameter", "Name")
    custom = [r["Properties"] for _, _, r in all_resources(synthesized, "Custom::AWS")]
    for challenge in plan.config.challenges:
        _, _, parameter = parameters[plan.challenge_config_parameter(challenge.challenge_id)]
        assert json.loads(parameter["Properties"]["Value"]) == plan.challenge_config(challenge).to_wire()
        expected = [dynamodb_item(r) for r in plan.challenge_records_for([challenge])]
        writes = [c for c in custom if challenge.challenge_id in json.dumps(c["Create"])]
        assert len(writes) == 1
        create = writes[0]["Create"]
        body = json.dumps(create)
        for item in expected:
            for key, value in item.items():
                if key != "queueUrl":
                    assert json.dumps({key: value}, separators=(",", ":"))[1:-1] in body.replace('\\"', '"')


# ------------------------------------------------------------------ tags, monitoring, outputs
def test_every_taggable_resource_carries_project_and_environment(synthesized: Synthesized, plan: WiringPlan) -> None:
    for stack, template in synthesized.templates.items():
        for lid, resource in template["Resources"].items():
            tags = resource.get("Properties", {}).get("Tags")
            if isinstance(tags, list):
                pairs = {t["Key"]: t["Value"] for t in tags}
                assert pairs.get("Project") == "mm-processor", (stack, lid)
                assert pairs.get("Environment") == "example", (stack, lid)
    for challenge in plan.config.challenges:
        _, _, fn = functions(synthesized)[plan.names.challenge_function(challenge.challenge_id)]
        assert {"Key": "ChallengeId", "Value": challenge.challenge_id} in fn["Properties"]["Tags"]


def test_alarms_cover_dlqs_functions_lag_rule_and_custom_metrics(synthesized: Synthesized, plan: WiringPlan) -> None:
    alarms = [r["Properties"] for _, _, r in all_resources(synthesized, "AWS::CloudWatch::Alarm")]
    # A plain alarm's metric, or each metric of a metric-math alarm (one per challenge, decision 081).
    metrics = [
        m
        for a in alarms
        for m in ([q["MetricStat"]["Metric"] for q in a.get("Metrics", []) if "MetricStat" in q] or [a])
    ]
    text = json.dumps(alarms)
    queues = by_name(synthesized, "AWS::SQS::Queue", "QueueName")
    dlqs = [plan.names.challenge_dlq(c.challenge_id) for c in plan.config.challenges]
    dlqs += [plan.names.completion_dlq, plan.names.fanout_dlq]  # router failures: S3, alarmed by ESM metrics
    for dlq in dlqs:
        lid = queues[dlq][1]
        assert any(
            a.get("MetricName") == "ApproximateNumberOfMessagesVisible" and lid in json.dumps(a.get("Dimensions"))
            for a in metrics
        ), dlq
    n_functions = 3 + len(plan.config.challenges)
    assert sum(a.get("MetricName") == "Errors" for a in metrics) == n_functions
    assert sum(a.get("MetricName") == "Throttles" for a in metrics) == n_functions
    assert sum(a.get("MetricName") == "OffsetLag" for a in alarms) == 1
    assert sum(a.get("MetricName") == "FailedInvocations" for a in alarms) == 1
    for metric in (Metric.LAUNCH_FAILURES, Metric.TASKS_FAILED, Metric.REPORT_FAILURES, Metric.RECORDS_REJECTED):
        assert f"SELECT SUM({metric.value}) FROM MMProcessor WHERE Environment = 'example'" in text  # noqa: S608  # noqa: S608
    assert all(a["AlarmActions"] for a in alarms)


def test_reconciliation_alarms_fire_on_any_synthetic_event_and_any_give_up(synthesized: Synthesized) -> None:
    alarms = [r["Properties"] for _, _, r in all_resources(synthesized, "AWS::CloudWatch::Alarm")]
    for metric, words in (
        (Metric.STOPPED_EVENTS_RECONCILED, "delivery is broken"),
        (Metric.RECONCILE_GAVE_UP, "an operator must"),
    ):
        query = f"SELECT SUM({metric.value}) FROM MMProcessor WHERE Environment = 'example'"  # noqa: S608
        (alarm,) = [a for a in alarms if query in json.dumps(a.get("Metrics"))]
        # > 0 in one 5-minute period, notifying the alarm topic
        assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["EvaluationPeriods"]) == (
            1,
            "GreaterThanOrEqualToThreshold",
            1,
        )
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"]
        assert words in alarm["AlarmDescription"]
    dashboard = next(r for _, _, r in all_resources(synthesized, "AWS::CloudWatch::Dashboard"))
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in (Metric.STOPPED_EVENTS_RECONCILED, Metric.RECONCILE_GAVE_UP, Metric.TASKS_STOPPED_FOR_TIMEOUT):
        assert f"SUM({metric.value})" in body


def test_core_outputs_name_topic_queues_tables_and_dashboard(synthesized: Synthesized) -> None:
    outputs = synthesized.templates["mm-example-core"]["Outputs"]
    for name in ("SubmissionsTopicArn", "ChallengeTableName", "StatusTableName", "DashboardName", "DashboardUrl"):
        assert name in outputs
    shard_outputs = [o for s, t in synthesized.templates.items() if s != "mm-example-core" for o in t["Outputs"]]
    assert sum(name.startswith("Queue") for name in shard_outputs) == 3


# ------------------------------------------------------------------ configuration errors
def run_app(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="cdk.out-invalid-") as outdir:
        return subprocess.run(
            [sys.executable, "-m", "infrastructure.app"],
            cwd=REPO,
            env={**os.environ, "CDK_OUTDIR": outdir, **env},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )


def test_an_invalid_override_fails_synthesis_naming_the_setting() -> None:
    result = run_app({"MSK_CLUSTER_ARN": "not-an-arn", "CDK_CONTEXT_JSON": json.dumps({"env": "example"})})
    assert result.returncode == 1
    assert "kafka.clusterArn" in result.stderr


def test_an_unknown_environment_from_context_fails_naming_env() -> None:
    result = run_app({"CDK_CONTEXT_JSON": json.dumps({"env": "nope"})})
    assert result.returncode == 1
    assert "env: no configuration 'nope.json'" in result.stderr
