"""Each function's memory, timeout and reserved concurrency, and their defaults."""

from __future__ import annotations

from pydantic import Field

from infrastructure.config.base import ConfigModel


class FunctionSizing(ConfigModel):
    memory_mb: int = Field(default=256, ge=128, le=10_240)
    timeout_seconds: int = Field(default=60, ge=3, le=900)
    reserved_concurrency: int | None = Field(default=None, ge=1)


# Each function's defaults; a sizing block in the JSON overrides only the fields it names (`_defaults`).
# The router, completion, sweeper and certificate monitor reserve concurrency so the challenge queues can never
# starve them (decision 052). The router: 5 invocations per Kafka poller, 2 pollers by default. The sweeper: 1
# also rules out two overlapping sweeps (Lambda retries a throttled scheduled run later).
SIZING_DEFAULTS: dict[str, FunctionSizing] = {
    "router": FunctionSizing(memory_mb=512, timeout_seconds=60, reserved_concurrency=10),
    "challenge_processor": FunctionSizing(memory_mb=256, timeout_seconds=30),
    "completion": FunctionSizing(memory_mb=256, timeout_seconds=60, reserved_concurrency=20),
    "timeout_sweeper": FunctionSizing(memory_mb=256, timeout_seconds=120, reserved_concurrency=1),
    "certificate_monitor": FunctionSizing(memory_mb=128, timeout_seconds=60, reserved_concurrency=1),
    # One run at a time: two overlapping runs would both fetch and write (decision 091).
    "scorer_token_refresher": FunctionSizing(memory_mb=128, timeout_seconds=60, reserved_concurrency=1),
}
