"""The plumbing the three parts of the status store share: the table, its client and clock, reads, and the
conditional writes every transition is made of (see the package docstring for the lifecycle)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from mm_adapters import aws
from mm_adapters.batch_get import batch_get_all
from mm_adapters.status_store.items import (
    attribute_values,
    history_entry,
    is_conditional_failure,
    now_iso,
    record_from_item,
)
from mm_contracts.models.lifecycle import LifecycleRecord, ReportStatus
from mm_contracts.models.outcome import TestStatus
from mm_contracts.models.phase import Platform, run_ids_of
from mm_contracts.names import STATUS_TABLE_PARTITION_KEY
from mm_contracts.ports import Clock

# How often a claim retries when a concurrent write changed the item between its read and its write.
MAX_RACE_RETRIES = 3
# How long after StopTask the STOPPED event has to be processed before the sweeper reconciles (decision 008).
DEFAULT_RECONCILE_GRACE_SECONDS = 900
# The sweeper looks at every LAUNCHED item at least this often (describe first), not only at its timeout:
# ECS forgets a stopped task after about an hour (decision 073).
DEFAULT_LIVENESS_CHECK_SECONDS = 900
# How long after a failed delivery SQS can still redeliver the message (visibility 180 s x 3 receives,
# with margin): a LAUNCH_FAILED item still untouched after this is stuck (decision 080).
DEFAULT_MESSAGE_LIFETIME_SECONDS = 900
# BatchGetItem: at most 100 keys a call; a partition key is at most 2048 bytes (ours are far shorter).
_BATCH_GET_KEYS = 100
_MAX_KEY_BYTES = 1024


class StatusTable:
    """The status table with its client and clock: reads (`get`, `get_many`, `get_runs`) and the write helpers."""

    def __init__(
        self,
        table_name: str,
        *,
        ttl_days: int = 90,
        clock: Clock = time.time,
        dynamodb_client: Any | None = None,
    ) -> None:
        self._table = table_name
        self._ttl_seconds = ttl_days * 86_400
        self._clock = clock
        self._client = dynamodb_client

    @property
    def client(self) -> Any:
        return self._client if self._client is not None else aws.client("dynamodb")

    def _key(self, run_id: str) -> dict[str, Any]:
        return {STATUS_TABLE_PARTITION_KEY: {"S": run_id}}

    @staticmethod
    def _values(values: dict[str, Any]) -> dict[str, Any]:
        return attribute_values(values)

    @staticmethod
    def _history_entry(now: float, state: str, detail: str) -> list[dict[str, str]]:
        return history_entry(now, state, detail)

    def get(self, run_id: str) -> LifecycleRecord | None:
        response = self.client.get_item(TableName=self._table, Key=self._key(run_id), ConsistentRead=True)
        item = response.get("Item")
        return self.record_from_item(item) if item else None

    def _update(
        self,
        run_id: str,
        update: str,
        condition: str,
        values: dict[str, Any],
        *,
        return_old: bool = False,
    ) -> dict[str, Any] | None:
        """Conditional UpdateItem; returns None when the condition failed."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._key(run_id),
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": self._values(values),
            "ReturnValues": "ALL_OLD" if return_old else "ALL_NEW",
        }
        if "#state" in update or "#state" in condition:
            request["ExpressionAttributeNames"] = {"#state": "state"}  # `state` is a reserved word
        try:
            response = self.client.update_item(**request)
        except ClientError as error:
            if is_conditional_failure(error):
                return None
            raise
        return response.get("Attributes", {})

    def _create_item(self, item: dict[str, Any]) -> bool:
        """PutItem only while no item has this run id; False when one exists (nothing written)."""
        try:
            self.client.put_item(
                TableName=self._table,
                Item=self._values(item),
                ConditionExpression=f"attribute_not_exists({STATUS_TABLE_PARTITION_KEY})",
            )
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise
        return True

    def _note(self, run_id: str, condition: str, values: dict[str, Any], now: float, tag: str, detail: str) -> bool:
        """Append a history entry (and nothing else) while `condition` holds."""
        updated = self._update(
            run_id,
            "SET updatedAt = :now, history = list_append(if_not_exists(history, :empty), :entry)",
            condition,
            {**values, ":now": now_iso(now), ":empty": [], ":entry": self._history_entry(now, tag, detail)},
        )
        return updated is not None

    def get_runs(self, submission_id: str) -> list[LifecycleRecord]:
        """Every run of a submission that has an item, in phase order (EXAMPLE, PROVISIONAL, SYSTEM)."""
        run_ids = run_ids_of(submission_id)
        found = self.get_many(run_ids)
        return [found[run_id] for run_id in run_ids if run_id in found]

    def get_many(self, run_ids: Iterable[str]) -> dict[str, LifecycleRecord]:
        """Consistent BatchGetItem (100 keys a call, unprocessed keys retried): the items that exist, by run id."""
        ids = [i for i in dict.fromkeys(run_ids) if 0 < len(i.encode()) <= _MAX_KEY_BYTES]
        found: dict[str, LifecycleRecord] = {}
        for start in range(0, len(ids), _BATCH_GET_KEYS):
            request: dict[str, Any] = {
                self._table: {
                    "Keys": [self._key(i) for i in ids[start : start + _BATCH_GET_KEYS]],
                    "ConsistentRead": True,
                }
            }
            for item in batch_get_all(self.client, request)[self._table]:
                record = self.record_from_item(item)
                found[record.run_id] = record
        return found

    def now(self) -> float:
        """The store's clock (epoch s): the completion function times its waits by the same clock."""
        return self._clock()

    def _dead_lettered_report_due(
        self,
        run_id: str,
        sets: list[str],
        removes: list[str],
        condition: str,
        values: dict[str, Any],
        now: float,
        report_due_in_seconds: int,
        *,
        check_ambiguous: bool,
    ) -> bool:
        """The DEAD_LETTERED write of a v6 run whose launch definitely started no task, with its terminal report
        due (decision 086): `reportStatus` PENDING, `testStatus` FAILED, `deadlineAt` = now + `report_due_in_
        seconds` (the sweeper re-drives an unfinished report), as `record_skipped` writes a skip. Conditioned on
        the item's `platform` (written by `claim_launch`) and, with `check_ambiguous`, on no ambiguity recorded:
        False (nothing written) for a v5 run or an ambiguous launch, which keep the operator's redrive and the
        sweeper's adopt-or-stop path (decisions 070, 071, 080)."""
        report_values = {
            **values,
            ":v6": Platform.V6.value,
            ":pending": ReportStatus.PENDING.value,
            ":failed": TestStatus.FAILED.value,
            ":report_deadline": int(now) + report_due_in_seconds,
        }
        report_condition = f"{condition} AND platform = :v6"
        if check_ambiguous:
            report_values[":not_ambiguous"] = False
            report_condition += " AND (attribute_not_exists(launchAmbiguous) OR launchAmbiguous = :not_ambiguous)"
        report_sets = [*sets, "reportStatus = :pending", "testStatus = :failed", "deadlineAt = :report_deadline"]
        update = f"SET {', '.join(report_sets)} REMOVE {', '.join(removes)}"
        return self._update(run_id, update, report_condition, report_values) is not None

    record_from_item = staticmethod(record_from_item)


__all__ = [
    "DEFAULT_LIVENESS_CHECK_SECONDS",
    "DEFAULT_MESSAGE_LIFETIME_SECONDS",
    "DEFAULT_RECONCILE_GRACE_SECONDS",
    "MAX_RACE_RETRIES",
    "StatusTable",
]
