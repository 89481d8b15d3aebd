"""Stable shards (decision 050): a challenge's stack depends on its id (or its pin), never on its position.

The plan-level tests are fast; the synth test builds the real templates three times (add, remove, reorder)
and compares every remaining challenge's stack name and resources.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from infrastructure.config import CONFIG_DIR, EnvironmentConfig, EnvironmentConfigError, parse_environment, stable_shard
from infrastructure.wiring import WiringPlan

FIRST = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601"  # the example's route-planner challenge


def challenge_ids(count: int) -> list[str]:
    return [f"5e1f0000-0000-4000-8000-{i:012x}" for i in range(count)]


def raw_config(ids: list[str], **settings: Any) -> dict[str, Any]:
    """The example environment with generated challenges (in the given order) and extra settings."""
    raw: dict[str, Any] = json.loads((CONFIG_DIR / "example.json").read_text())
    template = raw["challenges"][0]
    raw["challenges"] = [{**template, "challengeId": cid, "name": f"MM {cid[-4:]}"} for cid in ids]
    raw.update(settings)
    return raw


def config_for(ids: list[str], **settings: Any) -> EnvironmentConfig:
    return parse_environment(raw_config(ids, **settings))


def stack_of(config: EnvironmentConfig) -> dict[str, int]:
    return {c.challenge_id: shard for shard, members in WiringPlan(config).challenge_shards().items() for c in members}


# ------------------------------------------------------------------ assignment
def test_the_shard_of_an_id_is_a_fixed_function_of_the_id() -> None:
    # A literal on purpose: a different digest would move every deployed challenge to another stack.
    assert stable_shard(FIRST, 16) == 10
    assert stable_shard(FIRST.upper().lower(), 16) == 10
    assert {stable_shard(cid, 16) for cid in challenge_ids(200)} == set(range(1, 17))


def test_adding_removing_or_reordering_challenges_moves_no_other_challenge() -> None:
    ids = challenge_ids(40)
    before = stack_of(config_for(ids))

    removed_first = stack_of(config_for(ids[1:]))
    inserted = stack_of(config_for([*ids[:20], "5e1f0000-0000-4000-8000-0000000000ff", *ids[20:]]))
    reordered = stack_of(config_for(list(reversed(ids))))

    assert removed_first == {cid: shard for cid, shard in before.items() if cid != ids[0]}
    assert {cid: shard for cid, shard in inserted.items() if cid in before} == before
    assert reordered == before


def test_a_shard_lists_its_challenges_by_id_whatever_the_config_order() -> None:
    ids = challenge_ids(40)
    shards = WiringPlan(config_for(list(reversed(ids)))).challenge_shards()

    assert list(shards) == sorted(shards)  # shard order, only non-empty shards
    assert all(members for members in shards.values())
    for members in shards.values():
        assert [c.challenge_id for c in members] == sorted(c.challenge_id for c in members)


def test_a_pinned_challenge_goes_to_its_pinned_shard() -> None:
    ids = challenge_ids(3)
    raw = raw_config(ids)
    hashed = stable_shard(ids[0], 16)
    pin = 1 if hashed != 1 else 2
    raw["challenges"][0]["shard"] = pin

    shards = stack_of(parse_environment(raw))

    assert shards[ids[0]] == pin
    assert shards[ids[1]] == stable_shard(ids[1], 16)


def test_a_pin_beyond_the_number_of_shards_is_refused_by_name() -> None:
    raw = raw_config(challenge_ids(2), challengeShards=4)
    raw["challenges"][1]["shard"] = 5

    with pytest.raises(
        EnvironmentConfigError, match=r"challengeShards=4: 5e1f0000-0000-4000-8000-000000000001 \(shard 5\)"
    ):
        parse_environment(raw)


def test_an_overfull_shard_is_refused_naming_the_shard_its_challenges_and_both_ways_out() -> None:
    # Given three challenges hashed into one shard of two
    ids = challenge_ids(3)

    with pytest.raises(EnvironmentConfigError) as error:
        config_for(ids, challengeShards=1, challengesPerStack=2)

    message = str(error.value)
    assert "shard 01 holds 3 challenges" in message
    assert all(cid in message for cid in ids)
    assert "challengesPerStack=2" in message
    assert '"shard": N' in message  # pin one elsewhere
    assert "raise challengeShards" in message  # or more shards, which moves challenges
    assert "050" in message


# ------------------------------------------------------------------ synthesized


def challenge_resources(templates: dict[str, dict[str, Any]], challenge_id: str) -> tuple[str, dict[str, Any]]:
    """The stack holding a challenge, and every resource and output of it (their logical ids carry its id)."""
    short = challenge_id.replace("-", "")
    found = [
        (
            stack,
            {
                "Resources": {lid: r for lid, r in t["Resources"].items() if short in lid},
                "Outputs": {oid: o for oid, o in t.get("Outputs", {}).items() if short in oid},
            },
        )
        for stack, t in templates.items()
        if any(short in lid for lid in t["Resources"])
    ]
    assert len(found) == 1, (challenge_id, [stack for stack, _ in found])
    return found[0]


@pytest.mark.synth
@pytest.mark.xdist_group("synth")
def test_synthesized_stacks_keep_each_remaining_challenge_when_the_list_changes() -> None:
    from infrastructure.stacks.pipeline import shard_stack_name
    from tests.synth import synth

    # Given eight challenges, at most three per stack (positional sharding would fill three stacks in order)
    ids = challenge_ids(8)
    settings = {"environment": "shards", "challengesPerStack": 3}
    base = config_for(ids, **settings)
    variants = {
        "removed-first": config_for(ids[1:], **settings),
        "inserted-reordered": config_for(
            list(reversed([*ids[1:4], "5e1f0000-0000-4000-8000-0000000000ff", *ids[4:]])), **settings
        ),
    }

    # When each is synthesized
    before = synth(base, label="shards-base", checks=False).templates
    after = {name: synth(config, label=f"shards-{name}", checks=False).templates for name, config in variants.items()}

    # Then only non-empty shards are stacks, named by shard number
    expected = {"mm-shards-core"} | {shard_stack_name("shards", shard) for shard in WiringPlan(base).challenge_shards()}
    assert set(before) == expected
    # And every challenge that is still there has the same stack and the same resources as before
    for name, templates in after.items():
        for challenge in variants[name].challenges:
            if challenge.challenge_id not in ids:
                continue
            assert challenge_resources(templates, challenge.challenge_id) == challenge_resources(
                before, challenge.challenge_id
            ), (name, challenge.challenge_id)
