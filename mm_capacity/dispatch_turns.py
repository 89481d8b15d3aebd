"""One env-wide dispatch at a time (decision 124): a turn on one item; a dispatcher that finds it taken asks the
holder for another pass instead of racing it for the same queue heads.

Every completion frees a slot and dispatches env-wide. While a cap binds (the normal state of a flood) many do so
at once, and each reads the same queue head and tries the same runs in the same order: k dispatchers at once make
about k²/2 admission transactions for k admissions, every extra one cancelled because another took the run first.

The turn is the item `DISPATCH / ENV`: `holder`, `turnUntil` (epoch seconds) and `requested` (a counter).
1. *take*: SET holder, turnUntil, ADD requested 1, if no live turn is held; ALL_NEW gives the `requested` this turn
   answers. One write when the turn is free (one dispatcher at a time: the common case).
2. held: *ask*: ADD requested 1, ALL_NEW. A live turn held by another: its holder sees the counter move when it
   hands the turn back, and passes again; this dispatcher is done. No live holder (it handed back between the two
   writes): take again.
3. the holder passes, then *hands back*: REMOVE holder, turnUntil if it still holds the turn and `requested` is
   what it answered. Refused while it still holds it: asks came during the pass, so it passes again for them (at
   most `MAX_PASSES`, then hands back whatever: the next dispatch serves the rest, or the sweeper's, which takes
   no turn). Refused because another holds it: its turn ran out and was taken, and the new holder passes.

A freed slot is never left to nobody: the completion releases before it asks; an ask that finds a live holder moves
the counter while that holder holds the turn, so the holder's hand-back fails and its next pass reads the pools
after the release; a take comes after the release too, and its own pass reads after it.
A holder that dies keeps the turn until `turnUntil` (then the next ask takes it). Caps never rest on the turn:
every admission is still its own conditional transaction, so two passes at once (a turn that ran out, the
sweeper) are merely wasteful.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, cast

from botocore.exceptions import ClientError

from mm_capacity.keys import DISPATCH_PARTITION, ENV_POOL
from mm_capacity.table import MAX_RACE_RETRIES, CapacityTable, ddb_values, plain

TURN_SECONDS = 20  # far longer than a pass (well under a second); how long a dead holder blocks the next
MAX_PASSES = 5  # passes one turn makes for asks that came during it, before it hands the turn back anyway


@dataclass(frozen=True)
class DispatchTurn:
    """A turn this dispatcher holds: `answers` is the `requested` count its next pass serves."""

    holder: str
    answers: int


class CapacityDispatchTurns(CapacityTable):
    """The env-wide dispatch turn (see the module docstring)."""

    def _turn_key(self) -> dict[str, Any]:
        return self._key(DISPATCH_PARTITION, ENV_POOL)

    def ask_dispatch_turn(self) -> DispatchTurn | None:
        """Take the turn, or ask its holder for a pass; the turn when this dispatcher is to pass, None when another
        holder passes for it."""
        now = int(self._clock())
        holder = uuid.uuid4().hex
        for _ in range(MAX_RACE_RETRIES):
            taken = self._update_if(
                TableName=self._table,
                Key=self._turn_key(),
                UpdateExpression="SET holder = :me, turnUntil = :until ADD requested :one",
                ConditionExpression="attribute_not_exists(holder) OR turnUntil < :now",
                ExpressionAttributeValues=ddb_values(
                    {":me": holder, ":until": now + TURN_SECONDS, ":now": now, ":one": 1}
                ),
                ReturnValues="ALL_NEW",
            )
            if taken is not None:
                return DispatchTurn(holder, int(plain(taken["Attributes"]["requested"])))
            asked = self.client.update_item(
                TableName=self._table,
                Key=self._turn_key(),
                UpdateExpression="ADD requested :one",
                ExpressionAttributeValues=ddb_values({":one": 1}),
                ReturnValues="ALL_NEW",
            )["Attributes"]
            if "holder" in asked and int(plain(asked.get("turnUntil", {"N": "0"}))) >= now:
                return None  # asked while a live holder holds it: its hand-back fails, it passes again
        return None  # handed back between take and ask every time: the sweeper's dispatch serves this one

    def hand_back_dispatch_turn(self, turn: DispatchTurn, *, whatever: bool = False) -> DispatchTurn | None:
        """Hand the turn back; None when done (handed back, or no longer this dispatcher's), else the turn again with
        the asks that came during the pass to answer. `whatever`: hand it back even so (the last pass)."""
        condition = "holder = :me" if whatever else "holder = :me AND requested = :answered"
        values: dict[str, Any] = {":me": turn.holder}
        if not whatever:
            values[":answered"] = turn.answers
        try:
            self.client.update_item(
                TableName=self._table,
                Key=self._turn_key(),
                UpdateExpression="REMOVE holder, turnUntil",
                ConditionExpression=condition,
                ExpressionAttributeValues=ddb_values(values),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            old = cast(dict[str, Any], error.response.get("Item") or {})  # the item as it is (ALL_OLD)
            if "holder" not in old or plain(old["holder"]) != turn.holder:
                return None  # the turn ran out and another holds it: its pass serves the asks
            return DispatchTurn(turn.holder, int(plain(old["requested"])))
        return None


__all__ = ["MAX_PASSES", "TURN_SECONDS", "CapacityDispatchTurns", "DispatchTurn"]
