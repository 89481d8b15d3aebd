"""Event sources: AWS's side of the pipeline, which moto does not run, played by the engine's threads.

- the MSK event source mapping of each platform topic (`local_pipeline.kafka.KafkaFeeder`), its S3 on-failure
  destination, and the `kafka-redelivery` fault (the chosen records again, same offsets, in a later batch);
- the SQS event source mapping of each challenge processor (ReportBatchItemFailures), and the
  `sqs-duplicate-delivery` fault (a second instance receives the chosen messages at the same time);
- the completion rule's target (moto delivers the rule's matches to an SQS queue; each is one invocation,
  retried, then the DLQ);
- the sweeper's schedule (a "Scheduled Event" every `sweep_interval_seconds`).

Every invocation goes through `invoke(function_name, event)` (the engine's, which times it).
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fault_injection import FaultKind, FaultPlan
from infrastructure.config import EnvironmentConfig
from infrastructure.wiring import CHALLENGE_BATCH_SIZE, WiringPlan
from local_pipeline.awsenv import LocalAws
from local_pipeline.kafka import FeedStats, KafkaFeeder, KafkaMessage
from local_pipeline.provision import ChallengeResources, LocalDeviations, LocalResources
from local_pipeline.record_ids import record_ids
from local_pipeline.workers import FunctionWorker, Invocation
from mm_contracts.settings import RouterSettings

ESM_KEY = "local-esm"  # the event source mappings, the rule target and the schedule (AWS's side)
ENGINE_FAULTS = frozenset({FaultKind.SQS_DUPLICATE_DELIVERY, FaultKind.KAFKA_REDELIVERY})  # the engine plays them
DEFAULT_REDELIVERY_DELAY_SECONDS = 2.0  # kafka-redelivery (deployed: minutes or hours)

Invoke = Callable[[str, dict[str, Any]], Invocation]


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """A ReceiveMessage result in the shape the SQS event source hands to Lambda."""
    attributes = {
        name: str(message.get("MessageAttributes", {}).get(name, {}).get("StringValue", ""))
        for name in message.get("MessageAttributes", {})
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: {
                "stringValue": value,
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": message["MessageAttributes"][name].get("DataType", "String"),
            }
            for name, value in attributes.items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def scheduled_event(rule_name: str, region: str, account: str) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "version": "0",
        "id": f"local-{time.time_ns()}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": now,
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account}:rule/{rule_name}"],
        "detail": {},
    }


def _failed_ids(result: Invocation, ids: set[str]) -> set[str]:
    """The message ids an SQS batch invocation failed: its batchItemFailures, or all of them (a function error,
    or an identifier not in the batch, which Lambda treats as failing the whole batch)."""
    if not result.ok:
        return ids
    payload = result.payload if isinstance(result.payload, dict) else {}
    failures = payload.get("batchItemFailures") or []
    failed = {str(f.get("itemIdentifier")) for f in failures if isinstance(f, dict)}
    return failed if failed <= ids else ids


def _message_ids(message: dict[str, Any], challenge_id: str) -> tuple[str, ...]:
    """(submission id, challenge id) of a challenge-queue message, for matching fault rules."""
    try:
        body = json.loads(message.get("Body") or "")
    except ValueError:
        body = None
    submission = str(body.get("submissionId") or "") if isinstance(body, dict) else ""
    return (submission, challenge_id)


class EventSources:
    """The event source mappings, the rule target and the schedule of one environment, each in its thread."""

    def __init__(
        self,
        *,
        aws: LocalAws,
        config: EnvironmentConfig,
        plan: WiringPlan,
        deviations: LocalDeviations,
        resources: LocalResources,
        invoke: Invoke,
        twins: dict[str, FunctionWorker],
    ) -> None:
        self.aws = aws
        self.config = config
        self.plan = plan
        self.deviations = deviations
        self.resources = resources
        self._invoke = invoke
        self.twins = twins  # second challenge-processor instances (SQS duplicates), kept by the engine
        self.delivery_plan = FaultPlan()  # the kinds the event source mappings play (ENGINE_FAULTS)
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def router_settings(self) -> RouterSettings:
        settings = self.resources.functions[self.plan.names.router_function].settings
        assert isinstance(settings, RouterSettings)
        return settings

    # ------------------------------------------------------------------ threads
    def _thread(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def start(self) -> None:
        """AWS's side of the functions after the router: each challenge queue's mapping, the completion rule's
        target and the sweeper's schedule, each polling in its own thread until `stop()`."""
        for challenge in self.resources.challenges.values():
            self._thread(f"esm-{challenge.challenge_id[:8]}", functools.partial(self.poll_challenge_queue, challenge))
        self._thread("completion-target", self.poll_completion_events)
        self._thread("sweeper-schedule", self.sweep_on_schedule)

    def stop(self) -> None:
        """Stop every source and wait for its thread (each polls with a short wait)."""
        self.stopping.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads = []

    # ------------------------------------------------------------------ Kafka
    def kafka_feeders(self, stats: FeedStats) -> dict[str, KafkaFeeder]:
        """One MSK event source mapping per platform topic (decision 084), sharing one account of the Kafka side."""
        router_name = self.plan.names.router_function
        feeders = {
            source.topic: KafkaFeeder(
                lambda event: self._invoke(router_name, event),
                self.put_failure_record,
                batch_size=self.deviations.kafka_batch_size or source.batch_size,
                retry_attempts=source.retry_attempts,
                bisect_on_error=source.bisect_batch_on_error,
                event_source_arn=self.config.kafka.cluster_arn,
                function_arn=f"arn:aws:lambda:{self.config.region}:{self.config.account}:function:{router_name}",
            )
            for source in self.plan.kafka_sources()
        }
        for feeder in feeders.values():
            feeder.stats = stats
        return feeders

    def feed_kafka(self, by_topic: dict[str, list[KafkaMessage]], stats: FeedStats) -> threading.Event:
        """Feed each topic's records in a thread (then the `kafka-redelivery` fault's); the event is set when done."""
        feeders = self.kafka_feeders(stats)
        done = threading.Event()

        def feed() -> None:
            try:
                for topic, feeder in feeders.items():
                    if by_topic.get(topic):
                        feeder.feed(by_topic[topic], should_stop=self.stopping.is_set)
                for topic, feeder in feeders.items():
                    if by_topic.get(topic):
                        self.redeliver(feeder, by_topic[topic])
            finally:
                done.set()

        self._thread("kafka-esm", feed)
        return done

    def redeliver(self, feeder: KafkaFeeder, messages: list[KafkaMessage]) -> None:
        """kafka-redelivery: the chosen records come again, same offsets, in a later batch `delay_seconds` on
        (deployed: minutes or hours apart, e.g. after a consumer group rebalance)."""
        plan = self.delivery_plan
        if not plan.has(FaultKind.KAFKA_REDELIVERY):
            return
        again: list[KafkaMessage] = []
        delay = 0.0
        settings, challenges = self.router_settings, self.config.challenges
        for message in messages:
            ids = record_ids(message, settings, challenges)
            rule = plan.fire(FaultKind.KAFKA_REDELIVERY, ids=ids, now=time.time())
            if rule is not None:
                again.append(message)
                delay = max(delay, rule.param("delay_seconds", DEFAULT_REDELIVERY_DELAY_SECONDS))
        if again and not self.stopping.wait(delay):
            feeder.feed(again, should_stop=self.stopping.is_set)

    def put_failure_record(self, record: dict[str, Any]) -> None:
        """The S3 on-failure destination, as the event source mapping writes to it (one object per batch)."""
        spans = record["KafkaBatchInfo"]["recordsInfo"]
        now = datetime.now(tz=UTC)
        key = f"aws/lambda/{self.plan.names.router_function}/{next(iter(spans))}/{now:%Y/%m/%d}/{uuid.uuid4()}"
        self.aws.client("s3", ESM_KEY).put_object(
            Bucket=self.resources.router_failure_bucket, Key=key, Body=json.dumps(record).encode()
        )

    # ------------------------------------------------------------------ SQS
    def poll_challenge_queue(self, challenge: ChallengeResources) -> None:
        """The SQS event source mapping of one challenge processor (ReportBatchItemFailures)."""
        sqs = self.aws.client("sqs", ESM_KEY)
        while not self.stopping.is_set():
            messages = sqs.receive_message(
                QueueUrl=challenge.queue_url,
                MaxNumberOfMessages=CHALLENGE_BATCH_SIZE,
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                continue
            event = {"Records": [sqs_record(m, challenge.queue_arn, self.config.region) for m in messages]}
            twin = self.duplicate_delivery(challenge, messages)
            result = self._invoke(challenge.function_name, event)
            if twin is not None:
                twin.join()
            failed = _failed_ids(result, {m["MessageId"] for m in messages})
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                sqs.delete_message_batch(
                    QueueUrl=challenge.queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )
            # Failed messages stay in flight until the visibility timeout, then SQS redelivers them
            # (and after maxReceiveCount receives moves them to the challenge DLQ).

    def duplicate_delivery(self, challenge: ChallengeResources, messages: list[dict[str, Any]]) -> Any:
        """sqs-duplicate-delivery: the chosen messages are received by a second instance at the same time
        (SQS's at-least-once delivery); returns the thread to join, or None."""
        plan = self.delivery_plan
        if not plan.has(FaultKind.SQS_DUPLICATE_DELIVERY) or challenge.function_name not in self.twins:
            return None
        now = time.time()
        duplicated = [
            m
            for m in messages
            if plan.fire(FaultKind.SQS_DUPLICATE_DELIVERY, ids=_message_ids(m, challenge.challenge_id), now=now)
        ]
        if not duplicated:
            return None
        event = {"Records": [sqs_record(m, challenge.queue_arn, self.config.region) for m in duplicated]}
        twin = self.twins[challenge.function_name]
        thread = threading.Thread(target=twin.invoke, args=(event,), name="sqs-duplicate", daemon=True)
        thread.start()
        return thread

    # ------------------------------------------------------------------ the rule target and the schedule
    def poll_completion_events(self) -> None:
        """The completion rule's target: each matched event is one invocation (retried, then the DLQ)."""
        sqs = self.aws.client("sqs", ESM_KEY)
        url = self.resources.completion_events_queue_url
        name = self.plan.names.completion_function
        while not self.stopping.is_set():
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
            ).get("Messages", [])
            for message in messages:
                try:
                    event = json.loads(message["Body"])
                except ValueError:
                    continue  # left for redrive to the DLQ
                # moto's default SQS delivery template drops the envelope's `account`; AWS always sends it.
                # (Only on an EventBridge event: a "Run Report Due" invoke payload is passed as it was sent.)
                if isinstance(event, dict) and event.get("source") == "aws.ecs":
                    event.setdefault("account", self.config.account)
                if self._invoke(name, event).ok:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def sweep_on_schedule(self) -> None:
        name = self.plan.names.sweeper_function
        while not self.stopping.wait(self.deviations.sweep_interval_seconds):
            self._invoke(
                name, scheduled_event(self.plan.names.sweeper_schedule, self.config.region, self.config.account)
            )
