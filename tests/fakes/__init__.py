"""The one folder of fakes: one clock (`clock.VirtualClock`, with the matrix's scheduler), one metrics sink
(`metrics.RecordingMetrics`, the `MetricsSink` port), one fake per AWS service moto cannot play as the tests need
(ECS, SQS, SNS) and one per Topcoder API. Any test may use them; the fault matrix uses them all."""

import functools
from typing import Any


@functools.cache
def boto_session() -> Any:
    """One boto3 session for every client the fakes and the matrix build: botocore loads each service model once
    per session, and a fresh session per client costs a tenth of a second each."""
    import boto3

    return boto3.session.Session(region_name="us-east-1")
