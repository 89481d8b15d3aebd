"""Reading results: what the pipeline left behind, read back from the emulator, the stand-in and the fake Fargate.

`ResultReader.observe` fills the tracker's `Observations` (the audit queue, the routed tap, the router failure
bucket, the status table through the status store itself, the challenge DLQs); `observe_api_and_tasks` adds the
reviews and summations the stand-in received and the tasks the fake Fargate started. `busy` names what is still
in flight (None: quiet), `slots_held` the capacity slots a quiet run still holds. Nothing here changes what the
functions see: the queues it drains (audit, tap) are the engine's own observation points.

A look during the run costs at most a bounded amount, whatever the run's size (decision 116): the status items
of at most `LIFECYCLE_SUBMISSIONS_PER_LOOK` pending submissions (those whose task has stopped first: the runs
about to end; then the others in turn), and the failure bucket only while the feed reports an on-failure batch not
yet seen. The last look reads everything, so the report is what a full read says.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from local_pipeline.awsenv import LocalAws
from local_pipeline.fargate import FakeFargate
from local_pipeline.kafka import on_failure_offsets
from local_pipeline.provision import ChallengeResources, LocalResources
from local_pipeline.tracker import Observations
from mm_adapters.status_store import StatusStore
from mm_contracts.models.phase import ScoringPhase, run_id, run_ids_of
from mm_contracts.models.task import TaskEnv, TaskTag
from topcoder_standin import TopcoderStandIn

# Status items read per look, in submissions (3 run ids each, one BatchGetItem of 75 keys): the pending ones with
# a stopped task first, then the other pending ones in turn (each read at least every `pending / this` looks);
# every pending one when there are no more than this.
LIFECYCLE_SUBMISSIONS_PER_LOOK = 25
# review-api-v6's phase flags, in the order a summation is read (a summation sets exactly one).
_PHASE_OF_FLAG = {phase.summation_flag: phase for phase in ScoringPhase}
V6_API_PREFIX = "/v6"


def review_api_url(standin: TopcoderStandIn) -> str:
    """The stand-in's review-api-v6 base URL (what REVIEW_API_URL holds), `/v6` included."""
    return standin.v6_base_url


def v6_summations(standin: TopcoderStandIn) -> list[dict[str, Any]]:
    """The review-api-v6 summations the stand-in holds (each as last created or updated)."""
    return standin.summations


def summation_run_id(summation: Any) -> str | None:
    """`<submissionId>#<PHASE>` of a v6 review summation (its phase flag), else None."""
    if not isinstance(summation, dict) or not summation.get("submissionId"):
        return None
    phase = next((p for flag, p in _PHASE_OF_FLAG.items() if summation.get(flag) is True), None)
    return run_id(str(summation["submissionId"]), phase) if phase is not None else None


def summation_calls(standin: TopcoderStandIn) -> dict[str, int]:
    """review-api-v6 summation calls the stand-in answered, by method (GET lists, POST creates, PATCH/PUT update)."""
    calls: dict[str, int] = {}
    for request in standin.requests:
        if request.path.startswith(f"{V6_API_PREFIX}/reviewSummations"):
            calls[request.method] = calls.get(request.method, 0) + 1
    return calls


def _is_summation_create(request: Any) -> bool:
    """An answered-2xx POST /v6/reviewSummations: a summation created (a second one for a run is a violation)."""
    return (
        request.method == "POST"
        and request.path.endswith("/reviewSummations")
        and request.path.startswith(V6_API_PREFIX)
        and 200 <= request.status < 300
    )


def task_run_key(overrides: dict[str, Any], tags: list[dict[str, str]], submission_id: str) -> str:
    """The run id of a task from its phase (overrides, then the `Phase` tag), or the bare submission id when the
    task names no phase (the submission's single run: the completion function's fallback, decision 084)."""
    phase: str | None = None
    for container in overrides.get("containerOverrides") or []:
        for entry in container.get("environment") or []:
            if entry.get("name") == TaskEnv.PHASE.value:
                phase = str(entry.get("value") or "") or None
    if phase is None:
        phase = next((t["value"] for t in tags if t.get("key") == TaskTag.PHASE.value and t.get("value")), None)
    try:
        return run_id(submission_id, phase) if phase else submission_id
    except ValueError:
        return submission_id


def _dead_letter_key(body: str) -> str | None:
    """The run id (or the bare submission id: a body naming no phase) of a challenge DLQ message."""
    try:
        message = json.loads(body)
        submission_id, phase = str(message.get("submissionId")), message.get("phase")
        return run_id(submission_id, phase) if phase else submission_id
    except (ValueError, AttributeError):
        return None


def _add_each(bodies: list[str], add: Callable[[Any], None]) -> None:
    """`add` each JSON body; a body that is not JSON or not the expected shape is passed over."""
    for body in bodies:
        try:
            add(json.loads(body))
        except (ValueError, TypeError):
            continue


@dataclass
class ResultReader:
    """Reads one environment's results (the engine's clients: never the functions' access keys)."""

    aws: LocalAws
    resources: LocalResources
    standin: TopcoderStandIn
    fargate: FakeFargate
    dead_letter_counts: dict[str, int] = field(default_factory=dict)  # challenge id -> messages in its DLQ
    _failure_keys_seen: set[str] = field(default_factory=set)  # failure-bucket objects already observed
    _rotation: int = 0  # where the next look's turn of pending submissions starts

    def __post_init__(self) -> None:
        # One client per service for the reader's life: building one costs ~50 ms of CPU (botocore's models).
        self.sqs = self.aws.client("sqs")
        self.ddb = self.aws.client("dynamodb")
        self.s3 = self.aws.client("s3")
        self.store = StatusStore(self.resources.status_table, dynamodb_client=self.ddb)

    # ------------------------------------------------------------------ queues
    def drain(self, url: str, max_receives: int = 100) -> list[str]:
        """Up to `max_receives` x 10 messages (the rest next look: a busy router must not hold the look up)."""
        bodies: list[str] = []
        for _ in range(max_receives):
            messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not messages:
                return bodies
            bodies += [m["Body"] for m in messages]
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        return bodies

    def peek_dlq(self, url: str, expected: int) -> list[str]:
        """Read a DLQ without consuming it (visibility 0), until every message was seen once."""
        seen: dict[str, str] = {}
        for _ in range(max(3, expected)):
            for m in self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=0
            ).get("Messages", []):
                seen[m["MessageId"]] = m["Body"]
            if len(seen) >= expected:
                break
        return list(seen.values())

    def visible_messages(self, url: str) -> int:
        """ApproximateNumberOfMessages of a queue (what a DLQ holds)."""
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])

    def queue_depth(self, url: str) -> int:
        """Visible plus in-flight messages of a queue."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def completion_dlq_count(self) -> int:
        return self.visible_messages(self.resources.completion_dlq_url)

    # ------------------------------------------------------------------ observing
    def new_failure_records(self, batches_put: int | None = None) -> list[str]:
        """Objects put into the failure bucket since the last look (the bucket keeps them, like AWS's). With
        `batches_put` (the feed's on-failure batches, one object each), the bucket is listed only while some
        of them were not seen yet."""
        if batches_put is not None and batches_put <= len(self._failure_keys_seen):
            return []
        s3 = self.s3
        bucket = self.resources.router_failure_bucket
        bodies: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                if item["Key"] not in self._failure_keys_seen:
                    self._failure_keys_seen.add(item["Key"])
                    bodies.append(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode())
        return bodies

    def read_lifecycle(self, obs: Observations, pending: set[str] | None) -> None:
        """The status items of every run the routed submissions can have (`run_ids_of`), read through the
        store itself (BatchGetItem); once some are final, only submissions in `pending`, at most
        `LIFECYCLE_SUBMISSIONS_PER_LOOK` of them (`_this_look`)."""
        submissions = {str(r.get("submissionId")) for r in obs.routed.values() if r.get("submissionId")}
        if pending is not None:
            submissions = self._this_look(submissions & pending)
        ids = [key for submission in sorted(submissions) for key in run_ids_of(submission)]
        try:
            found = self.store.get_many(ids)
        except ValidationError:  # an item mid-write by another version: next look
            return
        obs.lifecycle.update(found)

    def _this_look(self, pending: set[str]) -> set[str]:
        """The pending submissions one look reads: all of them when few; else those with a stopped task (about to
        end: the completion function is recording them) and, in turn, the others, `limit` in all."""
        limit = LIFECYCLE_SUBMISSIONS_PER_LOOK
        if len(pending) <= limit:
            return pending
        stopped = {
            task.submission_id
            for task in list(self.fargate.tasks.values())
            if task.last_status == "STOPPED" and task.submission_id in pending
        }
        chosen = set(sorted(stopped)[:limit])
        others = sorted(pending - chosen)
        if others and len(chosen) < limit:
            start = self._rotation % len(others)
            turn = (others[start:] + others[:start])[: limit - len(chosen)]
            self._rotation = start + len(turn)
            chosen.update(turn)
        return chosen

    def observe_dead_letters(self, obs: Observations, challenge: ChallengeResources) -> None:
        """A challenge DLQ whose count changed is read again (peeked): each body names its run."""
        count = self.visible_messages(challenge.dlq_url)
        if count == self.dead_letter_counts.get(challenge.challenge_id, 0):
            return
        self.dead_letter_counts[challenge.challenge_id] = count
        for body in self.peek_dlq(challenge.dlq_url, count):
            key = _dead_letter_key(body)
            if key is not None:
                obs.dead_letters[key] = challenge.challenge_id

    def observe(
        self,
        obs: Observations,
        now: float,
        pending: set[str] | None = None,
        drain_limit: int = 100,
        failure_batches: int | None = None,
    ) -> None:
        """One look at the AWS side: audits, routed submissions, failure records, lifecycle items, DLQs."""
        _add_each(self.drain(self.resources.audit_queue_url, drain_limit), obs.add_audit)
        _add_each(self.drain(self.resources.tap_queue_url, drain_limit), lambda body: obs.add_routed(body, now))
        for body in self.new_failure_records(failure_batches):
            obs.router_failed.update(on_failure_offsets(body))
        if obs.routed:
            self.read_lifecycle(obs, pending)
            for challenge in self.resources.challenges.values():
                self.observe_dead_letters(obs, challenge)

    def observe_api_and_tasks(self, obs: Observations) -> None:
        """What the API received and the tasks the fake Fargate started (in-process, read whole each time)."""
        reviews: dict[str, list[dict[str, Any]]] = {}
        for review in self.standin.reviews:
            reviews.setdefault(str(review.get("submissionId")), []).append(review)
        summations: dict[str, list[dict[str, Any]]] = {}
        for summation in v6_summations(self.standin):
            key = summation_run_id(summation)
            if key is not None:
                summations.setdefault(key, []).append(summation)
        posts: dict[str, int] = {}
        for request in self.standin.requests:
            key = summation_run_id(request.json) if _is_summation_create(request) else None
            if key is not None:
                posts[key] = posts.get(key, 0) + 1
        tasks: dict[str, list[str]] = {}
        for task in list(self.fargate.tasks.values()):
            if task.submission_id:
                tasks.setdefault(task_run_key(task.overrides, task.tags, task.submission_id), []).append(task.arn)
        obs.reviews, obs.summations, obs.summation_posts, obs.tasks = reviews, summations, posts, tasks

    # ------------------------------------------------------------------ quiet or busy
    def busy(self) -> str | None:
        """What is still in flight (None: quiet): challenge queues and the completion target, a task running or
        a STOPPED event held back, an API request unanswered. Named, so a run that never goes quiet says why."""
        if self.standin.in_flight():
            return "a Topcoder API request is unanswered"
        if self.fargate.events_in_flight():
            return "a STOPPED event is held back (delayed)"
        for challenge in self.resources.challenges.values():
            depth = self.queue_depth(challenge.queue_url)
            if depth:
                return f"{depth} message(s) in the queue of challenge {challenge.challenge_id}"
        depth = self.queue_depth(self.resources.completion_events_queue_url)
        if depth:
            return f"{depth} event(s) waiting for the completion function"
        running = [t for t in list(self.fargate.tasks.values()) if t.last_status != "STOPPED"]
        if running:
            return f"{len(running)} task(s) not STOPPED (e.g. {running[0].arn})"
        return None

    def slots_held(self) -> dict[str, int]:
        """Pools whose `used` is not 0 once the run is quiet: a leaked slot (the reconciler would correct it)."""
        from mm_capacity.store import CapacityStore

        resources = self.resources
        snapshot = CapacityStore(resources.capacity_table, resources.status_table, dynamodb_client=self.ddb).pools()
        pools = [snapshot.env, *snapshot.challenges.values(), *snapshot.phases.values()]
        return {pool.sk: pool.used for pool in pools if pool.used or pool.holders}
