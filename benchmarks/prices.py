"""The public list prices the cost model uses (us-east-1, USD), each with the page it is read from and the date.

On-demand list prices at the first volume tier, free tiers left out (a million submissions a month exceeds most of
them, and a cost per million should not depend on what else shares the account). Change a price here, with its
source and the date, when AWS changes it; `benchmarks.cost_model` prints the table it used.
"""

from __future__ import annotations

import datetime

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

REGION = "us-east-1"
READ_ON = datetime.date(2026, 12, 2)


class Price(BaseModel):
    model_config = ConfigDict(frozen=True)

    usd: float = Field(ge=0)
    per: float = Field(gt=0)  # the price is for this many units
    unit: str
    source: HttpUrl
    read_on: datetime.date = READ_ON
    note: str = ""

    def of(self, units: float) -> float:
        """The cost of `units` units."""
        return self.usd * units / self.per


class PriceTable(BaseModel):
    model_config = ConfigDict(frozen=True)

    region: str = REGION
    lambda_requests: Price
    lambda_arm_gb_seconds: Price
    lambda_x86_gb_seconds: Price
    sns_publish_requests: Price
    sqs_standard_requests: Price
    dynamodb_write_request_units: Price
    dynamodb_read_request_units: Price
    cloudwatch_logs_ingestion: Price
    xray_traces_recorded: Price
    eventbridge_aws_service_events: Price
    step_functions_standard_transitions: Price


LAMBDA_PRICING = "https://aws.amazon.com/lambda/pricing/"

PRICES = PriceTable(
    lambda_requests=Price(usd=0.20, per=1_000_000, unit="requests", source=LAMBDA_PRICING),
    lambda_arm_gb_seconds=Price(
        usd=0.0000133334,
        per=1,
        unit="GB-seconds (arm64)",
        source=LAMBDA_PRICING,
        note="first tier (7.5 billion GB-s a month); duration billed in 1 ms steps, the INIT phase included",
    ),
    lambda_x86_gb_seconds=Price(
        usd=0.0000166667, per=1, unit="GB-seconds (x86_64)", source=LAMBDA_PRICING, note="for comparison only"
    ),
    sns_publish_requests=Price(
        usd=0.50,
        per=1_000_000,
        unit="publish requests",
        source="https://aws.amazon.com/sns/pricing/",
        note="each 64 KB chunk of a request is one request; a PublishBatch of small messages is one request "
        "(https://docs.aws.amazon.com/sns/latest/dg/sns-batch-api-actions.html); deliveries to SQS cost nothing",
    ),
    sqs_standard_requests=Price(
        usd=0.40,
        per=1_000_000,
        unit="requests",
        source="https://aws.amazon.com/sqs/pricing/",
        note="standard queue; each 64 KB chunk of a request's payload is one request; empty receives count",
    ),
    dynamodb_write_request_units=Price(
        usd=0.625,
        per=1_000_000,
        unit="write request units",
        source="https://aws.amazon.com/dynamodb/pricing/on-demand/",
        note="on-demand, Standard table class; 1 WRU = one write of up to 1 KB, 2 in a transaction",
    ),
    dynamodb_read_request_units=Price(
        usd=0.125,
        per=1_000_000,
        unit="read request units",
        source="https://aws.amazon.com/dynamodb/pricing/on-demand/",
        note="1 RRU = one strongly consistent read of up to 4 KB, half an eventually consistent one, 2 in a "
        "transaction",
    ),
    cloudwatch_logs_ingestion=Price(
        usd=0.50,
        per=2**30,
        unit="bytes ingested",
        source="https://aws.amazon.com/cloudwatch/pricing/",
        note="Standard log class; Lambda logs are vended logs, $0.50/GB for the first 10 TB a month",
    ),
    xray_traces_recorded=Price(
        usd=5.00,
        per=1_000_000,
        unit="traces recorded",
        source="https://aws.amazon.com/xray/pricing/",
        note="the functions deploy with active tracing (infrastructure/mm_constructs/functions.py)",
    ),
    eventbridge_aws_service_events=Price(
        usd=0.0,
        per=1_000_000,
        unit="AWS service events on the default bus",
        source="https://aws.amazon.com/eventbridge/pricing/",
        note="state-change events AWS services publish to the default bus are free (ECS task state changes)",
    ),
    step_functions_standard_transitions=Price(
        usd=0.025,
        per=1_000,
        unit="state transitions (Standard)",
        source="https://aws.amazon.com/step-functions/pricing/",
        note="every executed step is a transition, each retry another",
    ),
)
