"""Fakes shared by the fault matrix (and any test that wants them): one clock, one metrics sink, one fake per
AWS service the matrix cannot take from moto (ECS, SQS, Lambda async invoke) and one per Topcoder API."""

import functools
from typing import Any


@functools.cache
def boto_session() -> Any:
    """One boto3 session for every client the fakes and the matrix build: botocore loads each service model once
    per session, and a fresh session per client costs a tenth of a second each."""
    import boto3

    return boto3.session.Session(region_name="us-east-1")
