"""The names of an operator's audit entry, without the audit module's pydantic models.

Apart from `audit` so that the functions that write an operator's entry in a run's history (the status store's
operator part, the capacity table) but never build an `OperatorChange` on their first call load none of that
module's models on their cold start (issue 13, decision 112). `audit` re-exports every name here.
"""

from __future__ import annotations

# The `LifecycleEvent.state` of an operator's audit entry in a run's `history`.
OPERATOR_HISTORY_STATE = "OPERATOR"
# A history entry's detail is cut to this many characters (as the status store cuts every detail).
MAX_DETAIL = 500
# The actions an operator's change may name (`OperatorChange.action`).
OPERATOR_ACTIONS = frozenset({"rerun", "dispatch-system", "stop", "pause", "resume", "set-caps", "redrive", "replay"})

__all__ = ["MAX_DETAIL", "OPERATOR_ACTIONS", "OPERATOR_HISTORY_STATE"]
