"""What each function's worker process is given: its environment (the stack's, the Lambda runtime's, the local
endpoints and a fake access key of its own), and its setup hook (`local_pipeline.hooks.worker_setup`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infrastructure.wiring import WiringPlan
from local_pipeline.awsenv import LocalAws
from local_pipeline.provision import LocalDeviations, LocalFunction
from local_pipeline.workers import WorkerSpec, runtime_env

LOCAL_ENDPOINT_NAMES = ("AWS_ENDPOINT_URL_ECS", "AWS_ENDPOINT_URL_LAMBDA")  # the fake Fargate and the fake Lambda
WORKER_SETUP = "local_pipeline.hooks.worker_setup"


def function_access_key(function_name: str, environment: str) -> str:
    """Per-function fake access key, so the request counter can attribute every AWS call (the environment in
    it: two environments side by side in one emulator are counted apart)."""
    prefix = f"mm-{environment}-"
    short = function_name[len(prefix) :] if function_name.startswith(prefix) else function_name
    return f"local-{environment}-{short}"


def function_environment(
    spec: LocalFunction, aws: LocalAws, ecs_endpoint: str, environment: str, lambda_endpoint: str | None = None
) -> dict[str, str]:
    """The complete environment of one worker process: the function's own (as the stack sets it), what
    the Lambda runtime adds, and the local endpoints and fake credentials (`local_env_names`)."""
    env = {
        **spec.env(),
        **runtime_env(spec.name, spec.memory_mb),
        **aws.credentials_env(function_access_key(spec.name, environment)),
        "AWS_ENDPOINT_URL_ECS": ecs_endpoint,
    }
    if lambda_endpoint is not None:
        env["AWS_ENDPOINT_URL_LAMBDA"] = lambda_endpoint
    return env


def local_env_names(spec: LocalFunction, aws: LocalAws) -> frozenset[str]:
    """Names in a worker's environment that the runtime or the emulator adds (not the stack's)."""
    return frozenset({*runtime_env(spec.name, spec.memory_mb), *aws.credentials_env("any"), *LOCAL_ENDPOINT_NAMES})


def function_role(plan: WiringPlan, function_name: str) -> str:
    """The hook role of a function: completion, sweeper, router, or (every other) challenge."""
    names = plan.names
    roles = {
        names.completion_function: "completion",
        names.sweeper_function: "sweeper",
        names.router_function: "router",
    }
    return roles.get(function_name, "challenge")


def worker_spec(
    spec: LocalFunction,
    env: dict[str, str],
    *,
    plan: WiringPlan,
    deviations: LocalDeviations,
    log_dir: Path,
) -> WorkerSpec:
    """The worker of one function: its handler, environment, limits, log file and setup hook arguments."""
    role = function_role(plan, spec.name)
    setup_args: dict[str, Any] = {"role": role}
    if role == "sweeper" and deviations.sweeper_deadline_advance_seconds:
        setup_args["advance_seconds"] = deviations.sweeper_deadline_advance_seconds
    return WorkerSpec(
        function_name=spec.name,
        handler=spec.handler,
        env=env,
        timeout_seconds=spec.timeout_seconds,
        memory_mb=spec.memory_mb,
        log_path=str(log_dir / "functions" / f"{spec.name}.log"),
        setup=WORKER_SETUP,
        setup_args=setup_args,
    )
