"""A fake ECS Fargate:  the ECS JSON protocol on loopback, each task a real local process.

moto's ECS ignores `clientToken`, never fills `failures[]` and emits no task state change events, so the
challenge, completion and sweeper workers point `AWS_ENDPOINT_URL_ECS` here instead. It:

- speaks `X-Amz-Target: AmazonEC2ContainerServiceV20141113.RunTask | DescribeTasks | StopTask | ListTasks`
  (JSON 1.1, errors as `{"__type", "message"}`, which botocore turns into ClientError codes);
- validates RunTask the way ECS does where this pipeline could get it wrong (cluster, task definition,
  FARGATE, awsvpc subnets and security groups, container override names and size, tags, startedBy,
  clientToken), and flags any override variable that carries the scorer's secret (a leak);
- honours `clientToken` (same cluster + token -> the same task, never a second one);
- decides the task and event faults of a `fault_injection.FaultPlan` per challenge or submission (decision
  079): `stopped-event-lost` (the task runs, DescribeTasks shows it STOPPED, its STOPPED event is never put:
  the sweeper's reconciliation must finish it, decision 008), `stopped-event-duplicate` (put twice),
  `stopped-event-delayed` (`delay_seconds` late), `stopped-event-reordered` (RUNNING after STOPPED),
  `task-failed-to-start` (stopCode TaskFailedToStart, no containers), `scorer-overrun` (the scorer runs
  past its timeout), `ecs-forgets-stopped-task` (DescribeTasks answers MISSING `after_seconds` after the
  stop); and, for direct tests, `run-task-failures` (`capacity`) and `run-task-throttling` (`throttle`),
  which the pipeline injects in the workers' botocore clients instead;
- runs the task as a process (the challenge's scorer command) with the container overrides'
  environment, the task definition's environment, and its `secrets` resolved from the emulated SSM, as
  the ECS agent injects them; StopTask sends SIGTERM, then SIGKILL after a grace period;
- emits "ECS Task State Change" events (RUNNING, then STOPPED with exitCode, stopCode, stoppedReason,
  overrides, startedBy, group, timestamps) through the emulated EventBridge `PutEvents`, so the rule's
  own pattern decides what reaches the completion function.

One job per module (decision 102): `tasks` (task definitions, tasks and their state machine, the shapes ECS
answers and emits), `validation` (RunTask checked as ECS does), `control_plane` (`FakeFargate`: the API over the
tasks, clientToken, faults), `runner` (the scorer processes), `events` (the state change events and their
faults), `gauge` (tasks running at once), `endpoint` (the HTTP side, on `loopback`).
"""

from local_pipeline.fargate.control_plane import CAPACITY_REASON, FakeFargate
from local_pipeline.fargate.gauge import ALL_CHALLENGES, RunningGauge
from local_pipeline.fargate.runner import BEHAVIOUR_ENV, FAIL_TO_START, FAILED_TO_START_REASON
from local_pipeline.fargate.tasks import (
    DEFAULT_ECS_MEMORY_SECONDS,
    DEFAULT_EVENT_DELAY_SECONDS,
    DEFAULT_OVERRUN_SECONDS,
    DEFAULT_REORDER_DELAY_SECONDS,
    FAULT_KINDS,
    LOSE_STOPPED_EVENT,
    RUN_TASK_FAULTS,
    TASK_FAULTS,
    FakeTask,
    TaskDefinitionSim,
)
from local_pipeline.fargate.validation import EcsError

__all__ = [
    "ALL_CHALLENGES",
    "BEHAVIOUR_ENV",
    "CAPACITY_REASON",
    "DEFAULT_ECS_MEMORY_SECONDS",
    "DEFAULT_EVENT_DELAY_SECONDS",
    "DEFAULT_OVERRUN_SECONDS",
    "DEFAULT_REORDER_DELAY_SECONDS",
    "FAILED_TO_START_REASON",
    "FAIL_TO_START",
    "FAULT_KINDS",
    "LOSE_STOPPED_EVENT",
    "RUN_TASK_FAULTS",
    "TASK_FAULTS",
    "EcsError",
    "FakeFargate",
    "FakeTask",
    "RunningGauge",
    "TaskDefinitionSim",
]
