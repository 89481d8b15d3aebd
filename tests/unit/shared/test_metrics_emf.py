"""The EMF line `EmfMetricsSink` builds itself is the document Powertools' `single_metric` prints for the same metric
(alarms and dashboards read these lines: the shape must not move), the timestamp aside."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from mm_adapters.metrics import EmfMetricsSink
from mm_contracts.metric_names import Metric


def _powertools_line(name: str, unit: MetricUnit, value: float, namespace: str, dimensions: dict[str, str]) -> None:
    with single_metric(name=name, unit=unit, value=value, namespace=namespace, default_dimensions=dimensions):
        pass


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    for line in lines:
        line["_aws"].pop("Timestamp")
    return lines


@pytest.mark.parametrize("service", [None, "router"])
def test_a_count_and_a_gauge_are_the_lines_powertools_prints(
    service: str | None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "from-the-environment")
    sink = EmfMetricsSink(environment_name="dev", namespace="MM", service=service, dimensions={"ChallengeId": "c-1"})
    own = {"Environment": "dev", "ChallengeId": "c-1", **({"service": service} if service else {})}

    sink.count(Metric.RECORDS_RECEIVED, 3, reason="bad_json", phase="EXAMPLE")
    sink.gauge(Metric.RECORDS_RECEIVED, 1.5, challenge_id="c-2", seconds=True)
    sink.count(Metric.RECORDS_RECEIVED)
    ours = _lines(capsys)

    _powertools_line("RecordsReceived", MetricUnit.Count, 3, "MM", {**own, "Reason": "bad_json", "Phase": "EXAMPLE"})
    _powertools_line("RecordsReceived", MetricUnit.Seconds, 1.5, "MM", {**own, "ChallengeId": "c-2"})
    _powertools_line("RecordsReceived", MetricUnit.Count, 1, "MM", own)
    assert ours == _lines(capsys)
    assert ours[0]["RecordsReceived"] == [3.0]
    assert ours[2]["service"] == (service or "from-the-environment")


def test_a_value_that_is_not_a_number_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    sink = EmfMetricsSink(environment_name="dev")
    with pytest.raises(ValueError, match="not a valid number"):
        sink.count(Metric.RECORDS_RECEIVED, "three")  # type: ignore[arg-type]
    assert capsys.readouterr().out == ""
