"""The operator tool's part of the status store: an operator's change leaves an audit entry in the run's `history`
(`OperatorChange`, issue 12); the change itself is made by the part that owns the transition (a rerun by the
capacity store, a stop by the sweeper's path)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mm_adapters.status_store.items import now_iso
from mm_adapters.status_store.table import StatusTable
from mm_contracts.models.audit_names import OPERATOR_HISTORY_STATE
from mm_contracts.names import STATUS_TABLE_PARTITION_KEY

if TYPE_CHECKING:
    from mm_contracts.models.audit import OperatorChange


class OperatorStore(StatusTable):
    """`append_operator_entry`: the audit entry of a run-scoped change, appended to an existing run only."""

    def append_operator_entry(self, run_id: str, change: OperatorChange) -> bool:
        """Append "operator <action> by <actor> ..." (state OPERATOR, at the change's time) to the run's history;
        False (nothing written) when the run has no item: an audit entry never creates a run.

        `updatedAt` is the store's clock, not the change's time: it is the run's concurrency token (a rerun is
        conditioned on it), and the change was approved before this write, so it would move it backwards."""
        updated = self._update(
            run_id,
            "SET updatedAt = :now, history = list_append(if_not_exists(history, :empty), :entry)",
            f"attribute_exists({STATUS_TABLE_PARTITION_KEY})",
            {
                ":now": now_iso(self._clock()),
                ":empty": [],
                ":entry": self._history_entry(change.at.timestamp(), OPERATOR_HISTORY_STATE, change.history_detail()),
            },
        )
        return updated is not None


__all__ = ["OperatorStore"]
