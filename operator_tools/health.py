"""Health of a deployed environment: is every resource the wiring plan names there, wired, and quiet?

Checks, each a name, a verdict and a detail an operator can act on:

- credentials: the caller's account is the environment's (every other name is an ARN in that account);
- per challenge: its SSM config present and valid (parsed by the loader the functions use, naming the
  configured task definition), its task definition ACTIVE (active challenges only: a closed challenge's scorer
  may be deregistered), its queue's subscription on the submissions topic with the plan's filter policy and
  raw delivery, its DLQ empty;
- the fan-out and completion DLQs empty;
- no alarm of this environment in ALARM (its alarms carry `[mm-processor <env>]` in their description);
- no run stuck (decision 111; GSI `byStateDeadline`, whose sort key `deadlineAt` is the lease end of a LAUNCHING
  item and the report re-drive time of a final one): none LAUNCHING whose lease ended longer ago than the
  sweeper's own stuck-launch threshold (`launch_stuck_after_seconds` of the sweeper settings the wiring plan
  builds: SQS may still redeliver the message until then) plus one sweep interval; none final (or dead-lettered
  with its report due) whose report is still PENDING/REPORTING past its deadline by more than one sweep interval
  (`sweeperIntervalMinutes`). The sweeper acts on an item at its first run after that threshold, so only one it
  has not acted on is "stuck". A report the sweeper gave up on (`ReportRetryGaveUp`) has its deadline cleared and
  is off the index: this check cannot see it, and says so (the alarm fires, the sweeper's ERROR log names it).

ARNs are built from the environment config (account, region) and the plan's names: one source per fact, and the
credentials check refuses to go on when the caller is in another account. Every AWS error becomes a failed
check, never an exception, so one broken resource does not hide the others.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from infrastructure.config import ChallengeSettings
from infrastructure.mm_constructs.arns import Arns
from infrastructure.wiring import ResourceRefs, WiringPlan
from mm_adapters.challenge_config import ChallengeConfigError, ChallengeConfigLoader
from mm_adapters.status_store import StatusStore
from mm_contracts.models.lifecycle import FINAL_STATES, LifecycleRecord, ReportStatus, SubmissionState
from operator_tools.clients import ClientSource

# As `infrastructure/mm_constructs/monitoring.py` writes every alarm description.
ALARM_DESCRIPTION_PREFIX = "[mm-processor {environment}]"
CREDENTIALS_CHECK = "credentials"
STUCK_LAUNCHES_CHECK = "stuck launches"
STUCK_REPORTS_CHECK = "stuck reports"
# Final states whose report may be due, and a dead-lettered v6 run's (its FAILED summation; decision 086).
REPORT_STATES = (*sorted(FINAL_STATES), SubmissionState.DEAD_LETTERED)
UNFINISHED_REPORTS = frozenset({ReportStatus.PENDING, ReportStatus.REPORTING})
MAX_STUCK_LISTED = 5
STUCK_QUERY_LIMIT = 100  # index entries read per state (one Query page of LIMIT + 1 tells whether there are more)
# A report the sweeper gave up on has its deadline cleared (off the index): said, not searched for with a Scan.
GAVE_UP_NOTE = (
    "reports given up by the sweeper are not listed here: the ReportRetryGaveUp alarm fires for them and the "
    "sweeper's ERROR log names them"
)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class HealthReport:
    environment: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    @property
    def credentials_ok(self) -> bool:
        """False when the checks could not run at all (no credentials, or another account's)."""
        return all(check.ok for check in self.checks if check.name == CREDENTIALS_CHECK)

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "ok": self.ok, "checks": [asdict(c) for c in self.checks]}


def _error(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__


def _arn(plan: WiringPlan, service: str, resource: str) -> str:
    config = plan.config
    # One source for the partition: the stacks' own `Arns` (read from the environment's ARNs)
    return f"arn:{Arns.of(config).partition}:{service}:{config.region}:{config.account}:{resource}"


def submissions_topic_arn(plan: WiringPlan) -> str:
    return _arn(plan, "sns", plan.names.submissions_topic)


def queue_arn(plan: WiringPlan, queue_name: str) -> str:
    return _arn(plan, "sqs", queue_name)


def alarm_description_prefix(environment: str) -> str:
    return ALARM_DESCRIPTION_PREFIX.format(environment=environment)


def launch_stuck_after_seconds(plan: WiringPlan) -> int:
    """How long after its lease end the deployed sweeper takes a LAUNCHING item for stuck (decision 080): from the
    sweeper settings the wiring plan builds for it, so the two never disagree."""
    names = plan.names
    refs = ResourceRefs(
        sns_topic_arn="-", challenge_table_name="-", status_table_name=names.status_table, audit_queue_url="-"
    )
    return plan.sweeper_settings(refs).launch_stuck_after_seconds


def _how_many(count: int, truncated: bool) -> str:
    """`count`, or "at least `count`" when the index had more entries than were read."""
    return f"at least {count}" if truncated else str(count)


def _listed(records: list[LifecycleRecord], now: float) -> str:
    shown = [f"{r.run_id} ({int(now - (r.deadline_at or now))} s past)" for r in records[:MAX_STUCK_LISTED]]
    more = f" and {len(records) - MAX_STUCK_LISTED} more" if len(records) > MAX_STUCK_LISTED else ""
    return ", ".join(shown) + more


class _Checker:
    def __init__(self, plan: WiringPlan, clients: ClientSource, now: float | None = None) -> None:
        self.plan = plan
        self.clients = clients
        self.report = HealthReport(plan.config.environment)
        self.now = time.time() if now is None else now
        self.grace_seconds = plan.config.sweeper_interval_minutes * 60
        self.launch_grace_seconds = launch_stuck_after_seconds(plan) + self.grace_seconds

    def _store(self) -> StatusStore:
        return StatusStore(self.plan.names.status_table, dynamodb_client=self.clients.client("dynamodb"))

    def run(self, name: str, check: Callable[[], tuple[bool, str]]) -> None:
        try:
            ok, detail = check()
        except (ClientError, BotoCoreError) as error:
            ok, detail = False, f"AWS error: {_error(error)}"
        self.report.checks.append(Check(name, ok, detail))

    # ------------------------------------------------------------------ the checks
    def credentials(self) -> tuple[bool, str]:
        account = str(self.clients.client("sts").get_caller_identity()["Account"])
        expected = self.plan.config.account
        if account != expected:
            return False, f"the credentials are for account {account}, the environment is in {expected}"
        return True, f"account {account}"

    def challenge_config(self, challenge: ChallengeSettings) -> tuple[bool, str]:
        name = self.plan.challenge_config_parameter(challenge.challenge_id)
        loader = ChallengeConfigLoader(
            self.plan.challenge_config_parameter, max_age_seconds=0, ssm_client=self.clients.client("ssm")
        )
        try:
            document = loader.get(challenge.challenge_id)
        except ChallengeConfigError as error:
            return False, f"{name}: {error.reason.value}: {error.detail}"
        if document.ecs_task_definition != challenge.task_definition_arn:
            return False, (
                f"{name} names task definition {document.ecs_task_definition}, the environment config "
                f"{challenge.task_definition_arn}"
            )
        return True, name

    def capacity(self) -> tuple[bool, str]:
        """The environment's caps parameter: readable, valid, and admitting something (a cap of 0 holds every run,
        the smoke's included; decision 098)."""
        from mm_capacity.config import CapacityConfigError, EnvironmentCapacityLoader

        name = self.plan.capacity_parameter()
        try:
            caps = EnvironmentCapacityLoader(name, 0, self.clients.client("ssm")).get()
        except CapacityConfigError as error:
            return False, f"{name}: {error.reason.value}: {error.detail} (nothing is admitted until it is fixed)"
        summary = f"{name}: maxRunningTasks {caps.max_running_tasks}, runTaskPerSecond {caps.run_task_per_second}"
        if caps.max_running_tasks == 0:
            return False, f"{summary}: a cap of 0 admits no run"
        return True, summary

    def task_definition(self, challenge: ChallengeSettings) -> tuple[bool, str]:
        arn = challenge.task_definition_arn
        try:
            described = self.clients.client("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]
        except ClientError as error:
            return False, f"{arn}: {_error(error)} (not registered, or not readable)"
        status = str(described.get("status", "UNKNOWN"))
        return status == "ACTIVE", f"{arn}: {status}"

    def subscription(self, challenge: ChallengeSettings, subscriptions: dict[str, str]) -> tuple[bool, str]:
        queue_plan = self.plan.queue_plan(challenge)
        endpoint = queue_arn(self.plan, queue_plan.queue_name)
        subscription_arn = subscriptions.get(endpoint)
        if subscription_arn is None:
            return False, f"no subscription of {queue_plan.queue_name} on {self.plan.names.submissions_topic}"
        attributes = self.clients.client("sns").get_subscription_attributes(SubscriptionArn=subscription_arn)[
            "Attributes"
        ]
        problems = []
        try:
            policy = json.loads(attributes.get("FilterPolicy") or "null")
        except ValueError:
            policy = attributes.get("FilterPolicy")
        if policy != queue_plan.filter_policy:
            problems.append(f"filter policy {policy!r}, the plan's is {queue_plan.filter_policy!r}")
        if str(attributes.get("RawMessageDelivery", "false")).lower() != "true":
            problems.append("raw message delivery is off (the processor parses the raw body)")
        if problems:
            return False, f"{queue_plan.queue_name}: " + "; ".join(problems)
        return True, f"{queue_plan.queue_name}: {json.dumps(queue_plan.filter_policy)}"

    def queue_empty(self, queue_name: str) -> tuple[bool, str]:
        sqs = self.clients.client("sqs")
        try:
            url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        except ClientError as error:
            return False, f"{queue_name}: {_error(error)} (the queue is missing)"
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        depth = sum(int(value) for value in attributes.values())
        if depth:
            return False, f"{queue_name}: {depth} message(s): inspect and redrive (see docs/operations.md)"
        return True, f"{queue_name}: empty"

    def alarms(self) -> tuple[bool, str]:
        prefix = alarm_description_prefix(self.plan.config.environment)
        firing = sorted(
            str(alarm["AlarmName"])
            for alarm in self._alarms_in_alarm()
            if str(alarm.get("AlarmDescription", "")).startswith(prefix)
        )
        if firing:
            return False, f"{len(firing)} in ALARM: {', '.join(firing)}"
        return True, f"none of this environment's alarms ({prefix}) in ALARM"

    def _due(self, store: StatusStore, state: SubmissionState, cutoff: float) -> tuple[list[LifecycleRecord], bool]:
        """(up to STUCK_QUERY_LIMIT index entries of `state` due before `cutoff`, whether the index has more)."""
        due = store.find_due(state, before=cutoff, limit=STUCK_QUERY_LIMIT + 1)
        return due[:STUCK_QUERY_LIMIT], len(due) > STUCK_QUERY_LIMIT

    def stuck_launches(self) -> tuple[bool, str]:
        """LAUNCHING items whose lease ended longer ago than the sweeper's stuck-launch threshold plus one sweep
        (the sweeper's stuck-launch pass should have dead-lettered them)."""
        store = self._store()
        grace = self.launch_grace_seconds
        cutoff = self.now - grace
        due, truncated = self._due(store, SubmissionState.LAUNCHING, cutoff)
        found = store.get_many(r.run_id for r in due)
        stuck = [r for r in found.values() if r.state is SubmissionState.LAUNCHING and (r.deadline_at or 0) < cutoff]
        if stuck:
            return False, (
                f"{_how_many(len(stuck), truncated)} run(s) LAUNCHING past their lease by more than {grace} s: "
                f"{_listed(stuck, self.now)} (mm-processor status <run>; then the challenge DLQ)"
            )
        return True, f"no run LAUNCHING past its lease by more than {grace} s"

    def stuck_reports(self) -> tuple[bool, str]:
        """Final items whose report is PENDING/REPORTING past its re-drive deadline by more than the grace."""
        store = self._store()
        cutoff = self.now - self.grace_seconds
        run_ids: list[str] = []
        truncated = False
        for state in REPORT_STATES:
            due, more = self._due(store, state, cutoff)
            run_ids.extend(r.run_id for r in due)
            truncated = truncated or more
        found = store.get_many(run_ids)
        stuck = sorted(
            (r for r in found.values() if r.report_status in UNFINISHED_REPORTS and (r.deadline_at or 0) < cutoff),
            key=lambda r: r.deadline_at or 0,
        )
        if stuck:
            return False, (
                f"{_how_many(len(stuck), truncated)} report(s) PENDING/REPORTING past their deadline by more than "
                f"{self.grace_seconds} s: {_listed(stuck, self.now)} (mm-processor status <run>; then the completion "
                f"DLQ); {GAVE_UP_NOTE}"
            )
        return (
            True,
            f"no report PENDING/REPORTING past its deadline by more than {self.grace_seconds} s; {GAVE_UP_NOTE}",
        )

    def _alarms_in_alarm(self) -> Iterator[dict[str, Any]]:
        paginator = self.clients.client("cloudwatch").get_paginator("describe_alarms")
        for page in paginator.paginate(StateValue="ALARM", AlarmTypes=["MetricAlarm", "CompositeAlarm"]):
            yield from page.get("MetricAlarms", [])
            yield from page.get("CompositeAlarms", [])

    def topic_subscriptions(self) -> dict[str, str]:
        """Queue ARN -> subscription ARN of every subscription on the submissions topic (empty if none)."""
        paginator = self.clients.client("sns").get_paginator("list_subscriptions_by_topic")
        found: dict[str, str] = {}
        for page in paginator.paginate(TopicArn=submissions_topic_arn(self.plan)):
            for subscription in page.get("Subscriptions", []):
                found[str(subscription["Endpoint"])] = str(subscription["SubscriptionArn"])
        return found


def check_environment(plan: WiringPlan, clients: ClientSource, *, now: float | None = None) -> HealthReport:
    """Every check of the environment `plan` describes; stops after the credentials check if that fails.
    `now` (epoch s, default the time) is what the stuck checks compare deadlines with."""
    checker = _Checker(plan, clients, now)
    checker.run(CREDENTIALS_CHECK, checker.credentials)
    if not checker.report.ok:
        return checker.report
    names = plan.names
    subscriptions: dict[str, str] = {}

    def topic() -> tuple[bool, str]:
        subscriptions.update(checker.topic_subscriptions())
        return True, f"{names.submissions_topic}: {len(subscriptions)} subscription(s)"

    checker.run("topic", topic)
    checker.run("capacity", checker.capacity)
    for challenge in plan.config.challenges:
        label = challenge.challenge_id
        checker.run(f"config {label}", functools.partial(checker.challenge_config, challenge))
        if challenge.active:
            checker.run(f"task definition {label}", functools.partial(checker.task_definition, challenge))
        checker.run(f"subscription {label}", functools.partial(checker.subscription, challenge, subscriptions))
        checker.run(f"dlq {label}", functools.partial(checker.queue_empty, names.challenge_dlq(label)))
    checker.run("dlq fan-out", functools.partial(checker.queue_empty, names.fanout_dlq))
    checker.run("dlq completion", functools.partial(checker.queue_empty, names.completion_dlq))
    checker.run("alarms", checker.alarms)
    checker.run(STUCK_LAUNCHES_CHECK, checker.stuck_launches)
    checker.run(STUCK_REPORTS_CHECK, checker.stuck_reports)
    return checker.report
