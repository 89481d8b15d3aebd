"""Each IAM action a function's code calls (`aws_calls`) -> the resources it targets in this environment.

One method per function kind; an action a kind's map lacks is `None`, which the check reports as a missing
mapping (so a new call in the code fails the check until it is mapped here).
"""

from __future__ import annotations

from infrastructure.config import ChallengeSettings
from infrastructure.permissions.templates import Templates
from infrastructure.wiring import ResourceRefs, WiringPlan
from mm_contracts.models.challenge import ScorerCredentialsMode
from mm_contracts.names import STATUS_TABLE_OVERDUE_INDEX, static_token_parameter_name
from mm_contracts.settings import TokenSource

# Deploy-time references a function's settings need only to be built (the values never matter here).
_NO_REFS = ResourceRefs(sns_topic_arn="-", challenge_table_name="-", status_table_name="-", audit_queue_url="-")

ResourceMap = dict[str, list[str]]


class CodeResources:
    """The resources of the code's calls, per function kind, in one environment."""

    def __init__(self, templates: Templates, plan: WiringPlan, sample_task: str) -> None:
        self.t = templates
        self.plan = plan
        self.names = plan.names
        self.config = plan.config
        self.sample_task = sample_task  # stands for a task ARN only known at run time
        t, names = templates, plan.names
        self.status = t.arn("dynamodb", f"table/{names.status_table}")
        self.capacity = t.arn("dynamodb", f"table/{names.capacity_table}")
        self.capacity_parameter = t.arn("ssm", f"parameter/{plan.capacity_parameter().lstrip('/')}")
        self.challenge_queues = [t.arn("sqs", names.challenge_queue(c.challenge_id)) for c in self.config.challenges]
        token = self.config.token
        self.static_token = [
            t.arn("ssm", f"parameter/{static_token_parameter_name(self.config.ssm_prefix).lstrip('/')}")
        ]
        self.auth0_secret = [token.auth0_credentials_secret_arn] if token.auth0_credentials_secret_arn else []
        self.reads_static = token.source is TokenSource.STATIC_PARAMETER
        self.configs = [self._config_parameter(c.challenge_id) for c in self.config.challenges]

    def of(self, kind: str, challenge: ChallengeSettings | None, action: str) -> list[str] | None:
        """The resources `action` targets when a function of `kind` calls it; None: not mapped."""
        if kind == "challenge":
            assert challenge is not None
            return self._challenge(challenge).get(action)
        by_kind = {
            "router": self._router,
            "completion": self._completion,
            "sweeper": self._sweeper,
            "certificate-monitor": self._certificate_monitor,
            "scorer-token-refresher": self._scorer_token_refresher,
        }
        builder = by_kind.get(kind)
        return None if builder is None else builder().get(action)

    def _config_parameter(self, challenge_id: str) -> str:
        return self.t.arn("ssm", f"parameter/{self.plan.challenge_config_parameter(challenge_id).lstrip('/')}")

    def _capacity_only(self) -> ResourceMap:
        # Only the capacity table: its queue entries come and go (DeleteItem), its pool partition is read whole
        # (Query), and no transaction deletes or merely checks a run item (decision 097: a test holds the
        # store's transactions to this).
        return {
            "dynamodb:DeleteItem": [self.capacity],
            "dynamodb:Query": [self.capacity],
            "dynamodb:ConditionCheckItem": [self.capacity],
        }

    def _router(self) -> ResourceMap:
        t, names = self.t, self.names
        return {
            "sns:Publish": [t.arn("sns", names.submissions_topic)],
            "dynamodb:BatchGetItem": [
                t.arn("dynamodb", f"table/{names.challenge_table}"),
                t.arn("dynamodb", f"table/{names.audit_marks_table}"),
            ],
            "dynamodb:BatchWriteItem": [t.arn("dynamodb", f"table/{names.audit_marks_table}")],
            "sqs:SendMessage": [t.arn("sqs", names.audit_queue)],
        }

    def _challenge(self, challenge: ChallengeSettings) -> ResourceMap:
        status, capacity = self.status, self.capacity
        # Only the insecure mode makes the processor itself read the token (challenge_lambda.credentials).
        insecure = challenge.scorer_credentials_mode is ScorerCredentialsMode.ENVIRONMENT_TOKEN_INSECURE
        # The code invokes the completion function its environment names (a v6 challenge's skipped runs);
        # a challenge whose environment names none never makes the call.
        completion_function = self.plan.challenge_settings(challenge, _NO_REFS).completion_function_name
        return {
            "lambda:InvokeFunction": [self.t.arn("lambda", f"function:{completion_function}")]
            if completion_function
            else [],
            # a submission's runs (supersede reads the member's others); a new run with its member and pools (114)
            "dynamodb:BatchGetItem": [status, capacity],
            "dynamodb:GetItem": [status, capacity],
            # a run is created WAITING in the enqueue transaction (status) with its queue entry (capacity)
            "dynamodb:PutItem": [status, capacity],
            "dynamodb:UpdateItem": [status, capacity],
            **self._capacity_only(),
            "ecs:RunTask": [challenge.task_definition_arn],
            "ecs:TagResource": [self.sample_task],
            "ecs:StopTask": [self.sample_task],  # a superseded running task (decision 095)
            "iam:PassRole": [challenge.task_role_arn, challenge.execution_role_arn],
            # its admitted runs go to its own queue, never another challenge's
            "sqs:SendMessage": [self.t.arn("sqs", self.names.challenge_queue(challenge.challenge_id))],
            "ssm:GetParameter": [
                self._config_parameter(challenge.challenge_id),
                self.capacity_parameter,
                *(self.static_token if insecure and self.reads_static else []),
            ],
            "secretsmanager:GetSecretValue": self.auth0_secret if insecure and not self.reads_static else [],
        }

    def _completion(self) -> ResourceMap:
        status, capacity = self.status, self.capacity
        return {
            "dynamodb:BatchGetItem": [status],  # the runs of a submission (`get_runs`, decision 084)
            "dynamodb:GetItem": [status, capacity],
            # a run's item is never created here: PutItem only for a transaction's queue entry (a requeue)
            "dynamodb:PutItem": [capacity],
            "dynamodb:UpdateItem": [status, capacity],
            **self._capacity_only(),
            "ecs:DescribeTasks": [self.sample_task],
            # a transient start failure goes back to its challenge's queue (decision 072), and an admitted run
            # of any challenge to its queue (decision 096)
            "sqs:GetQueueUrl": self.challenge_queues,
            "sqs:SendMessage": self.challenge_queues,
            "ssm:GetParameter": [
                *self.configs,
                self.capacity_parameter,
                *(self.static_token if self.reads_static else []),
            ],
            "secretsmanager:GetSecretValue": [] if self.reads_static else self.auth0_secret,
        }

    def _sweeper(self) -> ResourceMap:
        status, capacity, names = self.status, self.capacity, self.names
        return {
            **self._capacity_only(),
            "dynamodb:Query": [
                self.t.arn("dynamodb", f"table/{names.status_table}/index/{STATUS_TABLE_OVERDUE_INDEX}"),
                capacity,
            ],
            "dynamodb:GetItem": [status, capacity],
            "dynamodb:PutItem": [capacity],  # a transaction's queue entry; never a run's item
            "dynamodb:BatchGetItem": [status],
            "dynamodb:UpdateItem": [status, capacity],
            "ecs:DescribeTasks": [self.sample_task],
            "ecs:StopTask": [self.sample_task],
            "ecs:ListTasks": ["*"],  # no resource-level permission; held to the cluster by condition
            "lambda:InvokeFunction": [self.t.arn("lambda", f"function:{names.completion_function}")],
            # the safety-net dispatch and overdue admissions: any challenge's caps and queue (decision 096)
            "sqs:GetQueueUrl": self.challenge_queues,
            "sqs:SendMessage": self.challenge_queues,
            "ssm:GetParameter": [*self.configs, self.capacity_parameter],
            # the config versions pass: versions of the caps and every challenge's config (decision 121)
            "ssm:GetParameters": [*self.configs, self.capacity_parameter],
        }

    def _certificate_monitor(self) -> ResourceMap:
        secret = self.config.kafka.client_certificate_secret_arn
        return {"secretsmanager:GetSecretValue": [secret] if secret else []}

    def _scorer_token_refresher(self) -> ResourceMap:
        # its one parameter (read, then created or overwritten: decision 091), and the Auth0 credentials
        scorer_token = self.plan.scorer_token_parameter()
        parameter = [self.t.arn("ssm", f"parameter/{scorer_token.lstrip('/')}")] if scorer_token else []
        return {
            "ssm:GetParameter": parameter,
            "ssm:PutParameter": parameter,
            "secretsmanager:GetSecretValue": self.auth0_secret,
        }
