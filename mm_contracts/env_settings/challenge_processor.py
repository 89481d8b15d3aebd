"""The challenge processor's settings."""

from __future__ import annotations

from pydantic import Field, field_validator

from mm_contracts.env_settings.base import _split_csv
from mm_contracts.env_settings.token import TokenSettings


class ChallengeProcessorSettings(TokenSettings):
    powertools_service_name: str = "challenge-processor"
    challenge_id: str = Field(min_length=36, max_length=36)
    challenge_config_parameter: str = Field(min_length=1)
    config_cache_seconds: int = Field(default=300, ge=0, le=86_400)  # the TTL without an observed version (121)
    status_table_name: str = Field(min_length=1)
    status_ttl_days: int = Field(default=90, ge=1, le=3650)
    max_receive_count: int = Field(default=3, ge=1, le=1000)  # the queue's redrive maxReceiveCount
    launch_lease_seconds: int = Field(default=120, ge=10, le=3600)  # >= the function timeout
    # The router's allow list (same variable, same config field): the processor re-checks every URL before it
    # launches a scorer on it (mm_contracts.url_policy, decision 076).
    allowed_url_hosts: tuple[str, ...] = Field(min_length=1)
    # Where a run that will not be launched (a v6 skip, decision 086) is handed for its terminal report: the
    # completion function, invoked asynchronously with a "report due" event. None: the sweeper re-drives it.
    completion_function_name: str | None = Field(default=None, min_length=1)
    # Capacity (decisions 093, 094): the capacity table, the environment's caps parameter (cached this long),
    # and this challenge's own queue, where the runs of this challenge that the dispatcher admits are sent.
    capacity_table_name: str = Field(min_length=1)
    capacity_parameter_name: str = Field(min_length=1)
    challenge_queue_url: str = Field(min_length=1)
    capacity_cache_seconds: int = Field(default=60, ge=0, le=3600)  # the TTL without an observed version (121)

    _processor_csv = field_validator("allowed_url_hosts", mode="before")(_split_csv)
