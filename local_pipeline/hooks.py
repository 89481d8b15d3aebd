"""Setup hooks that run inside a worker process after the real handler is imported.

Each one is a documented local deviation (docs/decisions/064, 079), installed through the handler module's
own dependency-injection seam (`use_dependencies`) or on the clients the handlers build themselves
(`mm_adapters.aws.client`, cached per process), never by editing the function's code.
"""

from __future__ import annotations

from typing import Any

from mm_adapters.status_store import StatusStore

# The services whose faults the botocore adapter injects (fault_injection.BOTOCORE_KINDS).
FAULT_SERVICES = ("ecs", "dynamodb", "ssm", "sns")
_installed: list[Any] = []  # FaultInstallation handles of this process (uninstalled on reconfiguration)


class AdvancedDeadlineStore(StatusStore):
    """The status store whose *sweep time alone* runs `advance_seconds` ahead (`StatusStore.sweep_time`, the
    clock the sweeper compares deadlines, leases and task ages with).

    With challenge timeouts at ChallengeConfig's minimum (30 s) and an advance of 27 s, the sweeper
    stops a run-long task after about 3 s. Every write (history, updatedAt, new deadlines) keeps the real clock.
    """

    def __init__(self, table_name: str, *, advance_seconds: float, **kwargs: Any) -> None:
        super().__init__(table_name, **kwargs)
        self.advance_seconds = advance_seconds

    def sweep_time(self) -> float:
        return float(super().sweep_time()) + self.advance_seconds


def advance_sweeper_deadlines(advance_seconds: float) -> None:
    """Sweeper worker: install the real sweeper dependencies with the advanced overdue query."""
    from mm_capacity.store import CapacityStore
    from mm_contracts.settings import TimeoutSweeperSettings
    from sweeper_lambda import wiring

    settings = TimeoutSweeperSettings.from_env()
    wiring.use_dependencies(
        wiring.SweeperDependencies(
            settings,
            store=AdvancedDeadlineStore(settings.status_table_name, advance_seconds=advance_seconds),
            # Its capacity writes (admission times, deadlines) keep the real clock, like every other write.
            capacity_store=CapacityStore(settings.capacity_table_name, settings.status_table_name),
        )
    )


def install_fault_plan(role: str = "") -> int:
    """Install the run's fault plan (`MM_FAULT_PLAN`, fault_injection) in this worker; returns the number
    of clients given faults. AWS faults go on the handlers' own cached clients (`mm_adapters.aws.client`,
    the only way the functions build clients): what they fire is what the handler sees. The completion
    worker's Topcoder transport gets the one HTTP fault the API side cannot play (a crash after the POST)."""
    from fault_injection import BOTOCORE_KINDS, FaultKind, FaultPlan, install_botocore_faults
    from mm_adapters import aws

    for installation in _installed:
        installation.uninstall()
    _installed.clear()
    plan = FaultPlan.from_env()
    if plan is None or not plan.rules:
        return 0
    if any(rule.kind in BOTOCORE_KINDS for rule in plan.rules):
        for service in FAULT_SERVICES:
            _installed.append(install_botocore_faults(aws.client(service), plan))
    if role == "completion" and plan.has(FaultKind.CRASH_AFTER_REVIEW_POST):
        _install_review_post_crash(plan)
    return len(_installed)


def _install_review_post_crash(plan: Any) -> None:
    """Completion worker: the real dependencies, with Topcoder clients whose one transport (the real one, wrapped)
    injects the crash after a v5 review POST or a v6 summation POST (whichever platforms the environment serves)."""
    from completion_lambda import wiring
    from fault_injection import with_http_faults
    from mm_adapters.topcoder.review_summations import ReviewSummationsClient
    from mm_adapters.topcoder.submission_api import SubmissionApiClient
    from mm_adapters.topcoder.token import build_token_provider
    from mm_adapters.topcoder.transport import Urllib3Transport
    from mm_contracts.settings import CompletionSettings

    settings = CompletionSettings.from_env()
    transport = with_http_faults(Urllib3Transport(), plan)
    token_provider = build_token_provider(settings)
    limits: dict[str, Any] = {
        "timeout_seconds": settings.api_timeout_seconds,
        "max_retries": settings.api_max_retries,
        "transport": transport,
    }
    review_api = (
        SubmissionApiClient(settings.submission_api_url, token_provider, **limits)
        if settings.submission_api_url
        else None
    )
    summations_api = (
        ReviewSummationsClient(settings.review_api_url, token_provider, **limits) if settings.review_api_url else None
    )
    deps = wiring.CompletionDependencies(
        settings, token_provider=token_provider, review_api=review_api, summations_api=summations_api
    )
    wiring.use_dependencies(deps)


def worker_setup(role: str = "", advance_seconds: float = 0.0) -> None:
    """Every worker's setup: the fault plan (if any), then the sweeper's advanced deadlines (if asked)."""
    install_fault_plan(role)
    if advance_seconds:
        advance_sweeper_deadlines(advance_seconds)
