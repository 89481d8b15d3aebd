"""The post-deploy smoke check's synthetic submission."""

from __future__ import annotations

from pydantic import Field

from infrastructure.config.base import ConfigModel
from mm_contracts.models.base import CanonicalUuid


class SmokeSettings(ConfigModel):
    """The post-deploy smoke check's synthetic submission (`mm-processor smoke`, decision 083).

    A fixed test submission that exists in this environment's Topcoder (so the scorer can fetch it and the
    completion function can report on it); the smoke deletes its status item afterwards, so every smoke runs
    the same submission again. `memberId` and `url` are what the router would have read from its Kafka record.
    """

    challenge_id: CanonicalUuid  # one of this environment's active challenges (checked when the smoke runs)
    # The test submission's id in the form of the smoke challenge's platform: a UUID (v5) or a 14-character
    # nanoid (v6); checked against the challenge's platform below (EnvironmentConfig._smoke_fits).
    submission_id: str = Field(min_length=1, max_length=64)
    member_id: int = Field(ge=1)
    url: str = Field(pattern=r"^https://")  # on allowedUrlHosts, as the router requires
    # How long the smoke waits for a final state with its report settled (the scorer's run included).
    timeout_seconds: int = Field(default=900, ge=30, le=86_400)
