"""Certificate monitor Lambda (EventBridge schedule): glue only. The run is `certificate_monitor.check.check`, its
dependencies come from `certificate_monitor.wiring`.

The alarm fires below `kafka.certificateExpiryWarningDays` and also when the metric is missing, so a monitor that
fails (unreadable secret, bad PEM, no permission) never looks healthy; a failure also raises (Errors alarm).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from certificate_monitor.check import check
from certificate_monitor.observability import logger
from certificate_monitor.wiring import dependencies


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = dependencies()
    expiry = check(deps.settings, secrets=deps.secrets, metrics=deps.metrics, now=datetime.now(tz=UTC))
    return {"notValidAfter": expiry.not_valid_after.isoformat(), "daysToExpiry": round(expiry.days_to_expiry, 2)}
