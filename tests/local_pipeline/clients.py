"""A boto3 client for one of the harness's loopback endpoints (the fake Fargate, the fake Lambda): fake
credentials naming the caller, one attempt (a test sees the endpoint's first answer)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config


def loopback_client(service: str, endpoint_url: str, access_key: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )
