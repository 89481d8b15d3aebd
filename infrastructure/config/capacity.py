"""The environment's capacity block: the runtime caps (one source: `EnvironmentCapacity`) plus alarm thresholds."""

from __future__ import annotations

from pydantic import ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from mm_contracts.models.capacity import EnvironmentCapacity


class CapacitySettings(EnvironmentCapacity):
    """The environment's capacity (decision 097): `EnvironmentCapacity` (the runtime model, one source) plus the
    thresholds of the two capacity alarms.

    The runtime part is written by the core stack as the SSM parameter `<ssmPrefix>/capacity` (JSON) when
    `writeChallengeConfig` is true; operators may change that parameter at run time (the functions cache it
    60 s), and the next deploy writes the config's values again.
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, str_strip_whitespace=True
    )

    # Alarm when the oldest waiting run of the environment has waited longer than this.
    oldest_wait_alarm_minutes: int = Field(default=60, ge=1, le=10_080)
    # Alarm when the environment's cap has been reached for this long (at least one sweeper interval).
    cap_reached_alarm_minutes: int = Field(default=30, ge=1, le=1_440)

    @model_validator(mode="after")
    def _pool_item_can_take_the_pace(self) -> CapacitySettings:
        # Caps whose full pool item needs more write units a second than one DynamoDB item takes cannot run at
        # their pace: refused before they are deployed (decision 125).
        refusal = self.pool_write_refusal()
        if refusal is not None:
            raise ValueError(refusal)
        return self

    def runtime(self) -> EnvironmentCapacity:
        """The SSM parameter's document: exactly the `EnvironmentCapacity` fields of this block."""
        return EnvironmentCapacity.model_validate(
            {name: getattr(self, name) for name in EnvironmentCapacity.model_fields}
        )
