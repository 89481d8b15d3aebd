"""mm_adapters.challenge_config: SSM config loading, per-challenge TTL cache, typed errors."""

from __future__ import annotations

import json

import pytest

from mm_adapters.challenge_config import ChallengeConfigError, ChallengeConfigLoader, ConfigErrorReason
from mm_contracts.names import challenge_config_parameter_name
from tests.conftest import Clock
from tests.unit.challenge.helpers import CHALLENGE_ID, OTHER_CHALLENGE_ID, PARAMETER_NAME, FakeSsm, config_document


def _loader(ssm: FakeSsm, clock: Clock, max_age: int = 300) -> ChallengeConfigLoader:
    return ChallengeConfigLoader(challenge_config_parameter_name, max_age, ssm, clock=clock)


def test_loads_and_parses_the_parameter_named_by_name_for(clock: Clock) -> None:
    ssm = FakeSsm()
    ssm.put(PARAMETER_NAME, config_document(timeoutSeconds=900, cpu=2048, memoryMb=4096))

    config = _loader(ssm, clock).get(CHALLENGE_ID)

    assert ssm.calls == [PARAMETER_NAME]
    assert (config.challenge_id, config.scorer_type, config.ecs_cluster) == (
        CHALLENGE_ID,
        "mm-scorer-java",
        "mm-scorers",
    )
    assert (config.timeout_seconds, config.cpu, config.memory_mb) == (900, 2048, 4096)


def test_cached_per_challenge_until_max_age(clock: Clock) -> None:
    ssm = FakeSsm()
    other_name = challenge_config_parameter_name(OTHER_CHALLENGE_ID)
    ssm.put(PARAMETER_NAME, config_document())
    ssm.put(other_name, config_document(OTHER_CHALLENGE_ID))
    loader = _loader(ssm, clock, max_age=300)

    for _ in range(3):
        loader.get(CHALLENGE_ID)
        loader.get(OTHER_CHALLENGE_ID)
    clock.advance(299)
    loader.get(CHALLENGE_ID)
    assert (ssm.calls_for(PARAMETER_NAME), ssm.calls_for(other_name)) == (1, 1)

    clock.advance(2)  # past max age
    loader.get(CHALLENGE_ID)
    assert ssm.calls_for(PARAMETER_NAME) == 2


def test_force_refresh_reads_ssm_again_and_sees_the_new_value(clock: Clock) -> None:
    ssm = FakeSsm()
    ssm.put(PARAMETER_NAME, config_document(ecsTaskDefinition="mm-scorer-example:3"))
    loader = _loader(ssm, clock)
    loader.get(CHALLENGE_ID)
    ssm.put(PARAMETER_NAME, config_document(ecsTaskDefinition="mm-scorer-example:4"))

    assert loader.get(CHALLENGE_ID).ecs_task_definition == "mm-scorer-example:3"  # cached
    assert loader.get(CHALLENGE_ID, force_refresh=True).ecs_task_definition == "mm-scorer-example:4"
    assert ssm.calls_for(PARAMETER_NAME) == 2


def test_max_age_zero_never_caches(clock: Clock) -> None:
    ssm = FakeSsm()
    ssm.put(PARAMETER_NAME, config_document())
    loader = _loader(ssm, clock, max_age=0)

    loader.get(CHALLENGE_ID)
    loader.get(CHALLENGE_ID)

    assert ssm.calls_for(PARAMETER_NAME) == 2


def test_missing_parameter_is_a_config_error_naming_it(clock: Clock) -> None:
    with pytest.raises(ChallengeConfigError) as raised:
        _loader(FakeSsm(), clock).get(CHALLENGE_ID)

    assert raised.value.reason is ConfigErrorReason.PARAMETER_MISSING
    assert PARAMETER_NAME in str(raised.value)


def test_not_json_is_a_config_error(clock: Clock) -> None:
    ssm = FakeSsm({PARAMETER_NAME: "scorerType=mm-scorer-java"})

    with pytest.raises(ChallengeConfigError) as raised:
        _loader(ssm, clock).get(CHALLENGE_ID)

    assert raised.value.reason is ConfigErrorReason.NOT_JSON


def test_json_that_is_not_an_object_is_a_config_error(clock: Clock) -> None:
    ssm = FakeSsm({PARAMETER_NAME: json.dumps(["mm-scorers"])})

    with pytest.raises(ChallengeConfigError) as raised:
        _loader(ssm, clock).get(CHALLENGE_ID)

    assert raised.value.reason is ConfigErrorReason.NOT_JSON
    assert "list" in raised.value.detail


def test_invalid_fields_are_named(clock: Clock) -> None:
    document = config_document(scorerType="has spaces!", timeoutSeconds=5)
    del document["ecsCluster"]
    ssm = FakeSsm()
    ssm.put(PARAMETER_NAME, document)

    with pytest.raises(ChallengeConfigError) as raised:
        _loader(ssm, clock).get(CHALLENGE_ID)

    assert raised.value.reason is ConfigErrorReason.INVALID_FIELDS
    for name in ("ecsCluster", "scorerType", "timeoutSeconds"):
        assert name in raised.value.detail


def test_document_for_another_challenge_is_rejected(clock: Clock) -> None:
    ssm = FakeSsm()
    ssm.put(PARAMETER_NAME, config_document(OTHER_CHALLENGE_ID))

    with pytest.raises(ChallengeConfigError) as raised:
        _loader(ssm, clock).get(CHALLENGE_ID)

    assert raised.value.reason is ConfigErrorReason.CHALLENGE_MISMATCH


def test_ssm_refusal_is_unreadable_not_missing(clock: Clock) -> None:
    from botocore.exceptions import ClientError

    class DeniedSsm(FakeSsm):
        def get_parameter(self, *, Name: str, WithDecryption: bool = False) -> dict[str, object]:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetParameter")

    with pytest.raises(ChallengeConfigError) as raised:
        _loader(DeniedSsm(), clock).get(CHALLENGE_ID)

    assert raised.value.reason is ConfigErrorReason.PARAMETER_UNREADABLE
    assert "AccessDeniedException" in raised.value.detail


def test_a_failure_is_not_cached_and_drops_the_stale_entry(clock: Clock) -> None:
    ssm = FakeSsm()
    ssm.put(PARAMETER_NAME, config_document())
    loader = _loader(ssm, clock)
    loader.get(CHALLENGE_ID)
    ssm.put(PARAMETER_NAME, "{broken")

    with pytest.raises(ChallengeConfigError):
        loader.get(CHALLENGE_ID, force_refresh=True)
    with pytest.raises(ChallengeConfigError):
        loader.get(CHALLENGE_ID)  # not served from the old cache entry
    ssm.put(PARAMETER_NAME, config_document(timeoutSeconds=600))

    assert loader.get(CHALLENGE_ID).timeout_seconds == 600
    assert ssm.calls_for(PARAMETER_NAME) == 4


def test_against_moto_ssm_with_the_lazy_default_client(aws: None, clock: Clock) -> None:
    from mm_adapters import aws as aws_clients

    aws_clients.client("ssm").put_parameter(Name=PARAMETER_NAME, Value=json.dumps(config_document()), Type="String")

    config = ChallengeConfigLoader(challenge_config_parameter_name, 60, clock=clock).get(CHALLENGE_ID)

    assert config.scorer_container_name == "scorer"
