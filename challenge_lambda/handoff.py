"""Handing a run whose report is due to the completion function: an asynchronous invoke with a "report due" event
(decision 086). Best effort: the item is recorded with its report due, so the sweeper re-drives what fails here."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from mm_contracts.models.phase import RunKey
from mm_contracts.models.report_due import report_due_event


class ReportDueSender:
    def __init__(self, completion_function_name: str | None, lambda_client: Callable[[], Any], logger: Logger):
        self._function_name = completion_function_name
        self._lambda_client = lambda_client
        self._logger = logger

    def send(self, run: RunKey, ids: dict[str, str]) -> None:
        if self._function_name is None:
            self._logger.info("no completion function configured; the sweeper re-drives the report", extra=ids)
            return
        try:
            self._lambda_client().invoke(
                FunctionName=self._function_name,
                InvocationType="Event",
                Payload=json.dumps(report_due_event(run.run_id)).encode(),
            )
        except (BotoCoreError, ClientError) as error:
            # Not a reason to retry the message: the item is recorded with its report due, the sweeper re-drives it.
            self._logger.warning(
                "report-due invoke failed; the sweeper re-drives the report",
                extra={"error_type": type(error).__name__, **ids},
            )
