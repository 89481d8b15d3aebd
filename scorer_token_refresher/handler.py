"""Scorer-token refresher Lambda (EventBridge schedule, decision 091): glue only. The run is
`scorer_token_refresher.check.check` (keep the Topcoder M2M token that scorer task definitions reference valid in
its SSM SecureString); its dependencies come from `scorer_token_refresher.wiring`.

The alarm fires when `ScorerTokenSecondsToExpiry` falls to the refresh margin or below, and when the metric is
missing, so a refresher that fails or stops running never looks healthy; a failure also raises (Errors alarm).
The next scheduled run is the retry.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from scorer_token_refresher.check import check
from scorer_token_refresher.observability import logger
from scorer_token_refresher.wiring import dependencies


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = dependencies()
    outcome = check(deps.settings, ssm=deps.ssm, provider=deps.token_provider, metrics=deps.metrics, now=time.time())
    return {
        "action": outcome.action.value,
        "why": outcome.why.value,
        "secondsToExpiry": round(outcome.seconds_to_expiry),
    }
