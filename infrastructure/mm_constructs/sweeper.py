"""The timeout sweeper: a scheduled function (its own asset, `sweeper_lambda`) that stops tasks past their phase
timeout, reconciles lost STOPPED events and slots, re-drives stuck launches and reports, and admits waiting runs;
invoked also by the environment's Parameter Store changes (`ParameterChangeRule`: the config versions pass only,
decision 121).

Built into the completion construct's scope (`build_timeout_sweeper(completion, ...)`: paths `.../Sweeper`,
`.../SweepSchedule`) rather than a construct of its own, on purpose: the logical ids of a deployed stack stay
as they were, so an update never replaces the function (its fixed name would collide with itself).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infrastructure.mm_constructs.alarms import AlarmFactory
from infrastructure.mm_constructs.arns import Arns
from infrastructure.mm_constructs.data import CAPACITY_TABLE_ACTIONS, DataTables
from infrastructure.mm_constructs.functions import FunctionKit, FunctionSpec, InlinePolicyRole
from infrastructure.mm_constructs.nag import acknowledge
from infrastructure.wiring import SWEEPER_HANDLER, ResourceRefs, WiringPlan
from mm_contracts.names import STATUS_TABLE_OVERDUE_INDEX, challenge_config_parameter_prefix


@dataclass(frozen=True)
class TimeoutSweeper:
    function: lambda_.IFunction
    schedule: events.Rule
    parameter_changes: events.Rule


def build_timeout_sweeper(
    scope: Construct,
    *,
    plan: WiringPlan,
    kit: FunctionKit,
    refs: ResourceRefs,
    alarms: AlarmFactory,
    tables: DataTables,
    key: kms.IKey,
    completion: lambda_.IFunction,
) -> TimeoutSweeper:
    """The sweeper function, its role's statements, its schedule and its health alarms, in `scope`."""
    names = plan.names
    config = plan.config
    sweeper = kit.build(
        scope,
        "Sweeper",
        FunctionSpec(
            function_name=names.sweeper_function,
            asset="sweeper",
            handler=SWEEPER_HANDLER,
            sizing=config.timeout_sweeper,
            environment=plan.sweeper_settings(refs).to_env(),
            description="Times out, reconciles, adopts or stops scorer tasks; sweeps stuck launches and reports",
            extra={"retry_attempts": 0},  # the next scheduled run is the retry
        ),
    )
    _grant(sweeper.role, plan, tables=tables, key=key, completion=completion)
    acknowledge(
        sweeper.function,
        "Serverless-LambdaAsyncFailureDestination",
        "The sweeper is idempotent and scheduled: a failed run is retried by the next run, nothing is lost",
    )
    acknowledge(
        sweeper.function,
        "Serverless-LambdaDLQ",
        "The sweeper is idempotent and scheduled: a failed run is retried by the next run, nothing is lost",
    )
    schedule = events.Rule(
        scope,
        "SweepSchedule",
        rule_name=names.sweeper_schedule,
        description="Run the timeout sweeper",
        schedule=events.Schedule.rate(Duration.minutes(config.sweeper_interval_minutes)),
        targets=[targets.LambdaFunction(sweeper.function, retry_attempts=2)],
    )
    acknowledge(
        schedule,
        "Serverless-EventBusDLQ",
        "A missed scheduled sweep is repeated by the next one minutes later; nothing would wait in a DLQ",
    )
    parameter_changes = events.Rule(
        scope,
        "ParameterChangeRule",
        rule_name=names.parameter_change_rule,
        description="Stamp the new SSM versions on the capacity pool items when the caps or a challenge config change",
        event_pattern=parameter_change_pattern(plan),
        targets=[targets.LambdaFunction(sweeper.function, retry_attempts=2)],
    )
    acknowledge(
        parameter_changes,
        "Serverless-EventBusDLQ",
        "A lost parameter change event is stamped by the next scheduled sweep (decision 121); nothing would wait",
    )
    alarms.function_health(sweeper, sweeper.function, "timeout sweeper")
    return TimeoutSweeper(sweeper.function, schedule, parameter_changes)


def parameter_change_pattern(plan: WiringPlan) -> events.EventPattern:
    """The plan's Parameter Store change pattern (one source with the local pipeline's rule; decision 121)."""
    pattern = plan.parameter_change_rule_pattern()
    return events.EventPattern(source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern["detail"])


def _grant(
    role: InlinePolicyRole, plan: WiringPlan, *, tables: DataTables, key: kms.IKey, completion: lambda_.IFunction
) -> None:
    """What the sweeper's code calls, each scoped as tightly as IAM allows (the permission check holds it)."""
    names = plan.names
    config = plan.config
    arns = Arns.of(config)
    cluster = config.ecs.cluster_arn
    cluster_tasks = arns.cluster_tasks(cluster)
    config_parameters = arns.ssm_parameter(challenge_config_parameter_prefix(config.ssm_prefix)) + "/*"
    capacity_parameter = arns.ssm_parameter(plan.capacity_parameter())
    challenge_queues = arns.sqs_queue(names.challenge_queue("*"))
    # The one index the sweeper reads (a literal ARN: the table name is fixed per environment).
    index_arn = arns.dynamodb_index(names.status_table, STATUS_TABLE_OVERDUE_INDEX)
    role.add_to_policy(iam.PolicyStatement(actions=["dynamodb:Query"], resources=[index_arn]))
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem"],
            resources=[tables.status_table.table_arn],
        )
    )
    # The slot reconciler, re-sending overdue admissions and the env-wide dispatch, the safety net (096): the
    # capacity table, the caps (environment and challenge configs), every challenge queue.
    role.add_to_policy(
        iam.PolicyStatement(actions=list(CAPACITY_TABLE_ACTIONS), resources=[tables.capacity_table.table_arn])
    )
    # GetParameters: the config versions pass reads the versions of the caps and the configs (decision 121).
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["ssm:GetParameter", "ssm:GetParameters"], resources=[config_parameters, capacity_parameter]
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(actions=["sqs:GetQueueUrl", "sqs:SendMessage"], resources=[challenge_queues])
    )
    role.add_to_policy(iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[key.key_arn]))
    # StopTask for timeouts; DescribeTasks to reconcile a STOPPED event that was never processed (decision 008).
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["ecs:StopTask", "ecs:DescribeTasks"],
            resources=[cluster_tasks],
            conditions={"ArnEquals": {"ecs:cluster": cluster}},
        )
    )
    # The orphan sweep lists the cluster's running tasks (decision 071). ListTasks names no task, so it takes
    # no task ARN: it is scoped by the ecs:cluster condition key instead.
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["ecs:ListTasks"], resources=["*"], conditions={"ArnEquals": {"ecs:cluster": cluster}}
        )
    )
    # The synthetic STOPPED event goes to the completion function only (its unqualified ARN: no versions).
    role.add_to_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[completion.function_arn]))
    acknowledge(
        role,
        "AwsSolutions-IAM5",
        "Stops, describes and lists tasks of the one scorer cluster only (task ids are unknown in advance; "
        "ListTasks takes no task resource; all conditioned on ecs:cluster); reads the config of any challenge "
        "of this environment (the SSM prefix) and admits runs into any challenge queue of this environment "
        "(the queue-name pattern)",
        applies_to=(
            f"Resource::{cluster_tasks}",
            "Resource::*",
            f"Resource::{config_parameters}",
            f"Resource::{challenge_queues}",
        ),
    )
