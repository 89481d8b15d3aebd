"""Event sources: AWS's side of the pipeline, which moto does not run, played by the engine's threads.

- the MSK event source mapping of each platform topic (`local_pipeline.kafka.KafkaFeeder`), its S3 on-failure
  destination, and the `kafka-redelivery` fault (the chosen records again, same offsets, in a later batch);
- the SQS event source mapping of each challenge processor (ReportBatchItemFailures), scaled as Lambda scales
  it: pollers added one at a time while batches come full, up to the mapping's maximum concurrency, and let go
  when the queue is empty (decision 116); the `sqs-duplicate-delivery` fault (a second instance receives the
  chosen messages at the same time);
- the completion rule's target (moto delivers the rule's matches to an SQS queue; each is one invocation,
  retried, then the DLQ), up to the function's reserved concurrency at once, as Lambda's asynchronous
  invocations are;
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
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Protocol

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
COMPLETION_RECEIVE_MAX = 10  # SQS ReceiveMessage's most messages per call
ENGINE_FAULTS = frozenset({FaultKind.SQS_DUPLICATE_DELIVERY, FaultKind.KAFKA_REDELIVERY})  # the engine plays them
DEFAULT_REDELIVERY_DELAY_SECONDS = 2.0  # kafka-redelivery (deployed: minutes or hours)


class Invoke(Protocol):
    """One invocation of a function by name; `queued_at`: when its event entered its queue (epoch seconds)."""

    def __call__(self, function_name: str, event: dict[str, Any], *, queued_at: float | None = None) -> Invocation: ...


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


def _sent_at(message: dict[str, Any]) -> float | None:
    """When SQS received the message (its `SentTimestamp`, epoch milliseconds), in epoch seconds; None without it."""
    try:
        return int(message["Attributes"]["SentTimestamp"]) / 1000
    except (KeyError, TypeError, ValueError):
        return None


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
        instances: Callable[[str], int] | None = None,
    ) -> None:
        self.aws = aws
        self.config = config
        self.plan = plan
        self.deviations = deviations
        self.resources = resources
        self._invoke = invoke
        # A function's instances now (the engine's pools): a mapping keeps at most one invocation more in flight
        # than that (the one that may scale the pool up), so no received message waits long for an instance.
        self._instances = instances or self.concurrency
        self.twins = twins  # second challenge-processor instances (SQS duplicates), kept by the engine
        self.delivery_plan = FaultPlan()  # the kinds the event source mappings play (ENGINE_FAULTS)
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._threads_lock = threading.Lock()
        self._pollers: dict[str, int] = {}  # challenge id -> its mapping's pollers now
        self.pollers_most: dict[str, int] = {}  # challenge id -> the most pollers its mapping had at once
        self._sqs_client: Any = None
        self._s3_client: Any = None

    @property
    def sqs(self) -> Any:
        """One SQS client for every poller (botocore clients are thread-safe; building one costs ~50 ms of CPU)."""
        if self._sqs_client is None:
            self._sqs_client = self.aws.client("sqs", ESM_KEY)
        return self._sqs_client

    def concurrency(self, function_name: str) -> int:
        function = self.resources.functions.get(function_name)
        return function.concurrency if function is not None else 1

    def in_flight_limit(self, function_name: str) -> int:
        """How many invocations of the function a mapping starts at once now: its instances plus one, within
        its concurrency."""
        return min(self.concurrency(function_name), self._instances(function_name) + 1)

    @property
    def router_settings(self) -> RouterSettings:
        settings = self.resources.functions[self.plan.names.router_function].settings
        assert isinstance(settings, RouterSettings)
        return settings

    # ------------------------------------------------------------------ threads
    def _thread(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        with self._threads_lock:
            self._threads.append(thread)
        thread.start()

    def start(self) -> None:
        """AWS's side of the functions after the router: each challenge queue's mapping, the completion rule's
        target and the sweeper's schedule, each polling in its own thread until `stop()`."""
        for challenge in self.resources.challenges.values():
            self._add_poller(challenge)
        self._thread("completion-target", self.poll_completion_events)
        self._thread("sweeper-schedule", self.sweep_on_schedule)

    def stop(self) -> None:
        """Stop every source and wait for its threads (each polls with a short wait)."""
        self.stopping.set()
        while True:
            with self._threads_lock:
                threads, self._threads = self._threads, []
            if not threads:
                return
            for thread in threads:
                thread.join(timeout=30)

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
        if self._s3_client is None:
            self._s3_client = self.aws.client("s3", ESM_KEY)
        body = json.dumps(record).encode()
        self._s3_client.put_object(Bucket=self.resources.router_failure_bucket, Key=key, Body=body)

    # ------------------------------------------------------------------ SQS
    def _add_poller(self, challenge: ChallengeResources) -> None:
        """One more poller for the challenge's mapping, unless it has its maximum concurrency already (or stops)."""
        cid = challenge.challenge_id
        with self._threads_lock:
            count = self._pollers.get(cid, 0)
            if self.stopping.is_set() or count >= self.in_flight_limit(challenge.function_name):
                return
            self._pollers[cid] = count + 1
            self.pollers_most[cid] = max(self.pollers_most.get(cid, 0), count + 1)
        first = count == 0
        self._thread(f"esm-{cid[:8]}-{count}", functools.partial(self.poll_challenge_queue, challenge, first=first))

    def poll_challenge_queue(self, challenge: ChallengeResources, *, first: bool = True) -> None:
        """One poller of the SQS event source mapping of a challenge processor (ReportBatchItemFailures): it
        receives a batch, invokes the function with it and waits, as each of Lambda's pollers does. A full batch
        adds a poller (more messages are waiting, up to the maximum concurrency); an empty receive lets an added
        poller go (the first one stays, long polling)."""
        sqs = self.sqs
        try:
            while not self.stopping.is_set():
                messages = sqs.receive_message(
                    QueueUrl=challenge.queue_url,
                    MaxNumberOfMessages=CHALLENGE_BATCH_SIZE,
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
                if not messages:
                    if first:
                        continue
                    return
                if len(messages) >= CHALLENGE_BATCH_SIZE:
                    self._add_poller(challenge)
                self._deliver(sqs, challenge, messages)
        finally:
            with self._threads_lock:
                self._pollers[challenge.challenge_id] -= 1

    def _deliver(self, sqs: Any, challenge: ChallengeResources, messages: list[dict[str, Any]]) -> None:
        """One batch to the challenge processor; the messages it did not fail are deleted."""
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
        """The completion rule's target: each matched event is one invocation (retried, then the DLQ), several at
        once (`in_flight_limit`): a message is received only when an invocation can start on it."""
        sqs = self.sqs
        url = self.resources.completion_events_queue_url
        name = self.plan.names.completion_function
        changed = threading.Condition()
        in_flight = [0]

        def room() -> int:
            return self.in_flight_limit(name) - in_flight[0]

        def finished(_: object) -> None:
            with changed:
                in_flight[0] -= 1
                changed.notify()

        with ThreadPoolExecutor(max_workers=self.concurrency(name), thread_name_prefix="completion-target") as pool:
            while not self.stopping.is_set():
                with changed:
                    if not changed.wait_for(lambda: room() > 0, timeout=1):
                        continue
                    slots = min(COMPLETION_RECEIVE_MAX, room())
                    in_flight[0] += slots
                messages = sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=slots, WaitTimeSeconds=1, AttributeNames=["All"]
                ).get("Messages", [])
                with changed:
                    in_flight[0] -= slots - len(messages)
                for message in messages:
                    pool.submit(self._complete_one, sqs, url, message).add_done_callback(finished)

    def _complete_one(self, sqs: Any, url: str, message: dict[str, Any]) -> None:
        try:
            event = json.loads(message["Body"])
        except ValueError:
            return  # left for redrive to the DLQ
        # moto's default SQS delivery template drops the envelope's `account`; AWS always sends it.
        # (Only on an EventBridge event: a "Run Report Due" invoke payload is passed as it was sent.)
        if isinstance(event, dict) and event.get("source") == "aws.ecs":
            event.setdefault("account", self.config.account)
        queued_at = _sent_at(message)
        if self._invoke(self.plan.names.completion_function, event, queued_at=queued_at).ok:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def sweep_on_schedule(self) -> None:
        name = self.plan.names.sweeper_function
        while not self.stopping.wait(self.deviations.sweep_interval_seconds):
            self._invoke(
                name, scheduled_event(self.plan.names.sweeper_schedule, self.config.region, self.config.account)
            )
