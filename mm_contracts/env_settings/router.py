"""The router's settings."""

from __future__ import annotations

from pydantic import Field, field_validator

from mm_contracts.env_settings.base import EnvSettings, _split_csv
from mm_contracts.models.phase import Platform


class RouterSettings(EnvSettings):
    powertools_service_name: str = "router"
    sns_topic_arn: str = Field(min_length=1)
    challenge_table_name: str = Field(min_length=1)
    audit_queue_url: str = Field(min_length=1)
    # Kafka records already audited (decision 075); a mark outlives every re-delivery (max record age <= 7 d)
    # and the audit message it stands for (the audit queue keeps messages 14 days).
    audit_marks_table_name: str = Field(min_length=1)
    audit_mark_ttl_days: int = Field(default=14, ge=1, le=365)
    accepted_topics: tuple[str, ...] = ("submission.notification.create",)
    # The environment's platform profile (decision 084): v5, v6, or both during a migration. A record is read
    # as v6 when its topic is `marathonmatch.submission.received` (V6_SUBMISSION_TOPIC), else as v5.
    platforms: tuple[Platform, ...] = Field(default=(Platform.V5,), min_length=1)
    allowed_url_hosts: tuple[str, ...] = Field(min_length=1)  # exact host, or `.example.com` for subdomains
    max_record_bytes: int = Field(default=65_536, ge=1024, le=1_048_576)
    challenge_cache_seconds: int = Field(default=60, ge=0, le=3600)
    publish_max_attempts: int = Field(default=4, ge=1, le=10)

    _csv = field_validator("accepted_topics", "allowed_url_hosts", "platforms", mode="before")(_split_csv)
