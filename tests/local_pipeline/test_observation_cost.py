"""A look at a running pipeline costs a bounded amount, whatever the run's size (decision 116): it reads the status
items of at most LIFECYCLE_SUBMISSIONS_PER_LOOK pending submissions (those whose task stopped first, the others in
turn, so every one is read within a few looks), all of them when few are pending or at the last look; and it lists
the router failure bucket only while the feed put a batch there the reader has not seen."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

from local_pipeline.results import LIFECYCLE_SUBMISSIONS_PER_LOOK, ResultReader
from local_pipeline.tracker import Observations
from mm_contracts.models.phase import run_ids_of


class Store:
    def __init__(self) -> None:
        self.looks: list[set[str]] = []

    def get_many(self, ids: list[str]) -> dict[str, Any]:
        self.looks.append({i.split("#")[0] for i in ids})
        return {}


class Aws:
    def client(self, service: str, access_key: str = "") -> Any:
        return SimpleNamespace(service=service)


def _reader(stopped: set[str]) -> tuple[ResultReader, Store]:
    tasks = {
        f"arn-{s}": SimpleNamespace(submission_id=s, last_status="STOPPED" if s in stopped else "RUNNING")
        for s in stopped | {"running-task"}
    }
    resources = SimpleNamespace(status_table="mm-test-status")
    reader = ResultReader(Aws(), resources, standin=None, fargate=SimpleNamespace(tasks=tasks))  # type: ignore[arg-type]
    store = Store()
    reader.store = store  # type: ignore[assignment]
    return reader, store


def _observations(submissions: list[str]) -> Observations:
    obs = Observations()
    for offset, submission in enumerate(submissions):
        obs.routed[("topic", 0, offset)] = {"submissionId": submission}
    return obs


def test_a_look_reads_a_bounded_window_stopped_tasks_first_and_every_pending_submission_in_turn() -> None:
    submissions = [f"sub-{i:03d}" for i in range(4 * LIFECYCLE_SUBMISSIONS_PER_LOOK + 3)]
    stopped = {"sub-007", "sub-100"}
    reader, store = _reader(stopped)
    obs = _observations(submissions)
    pending = set(submissions)
    looks = math.ceil(len(submissions) / (LIFECYCLE_SUBMISSIONS_PER_LOOK - len(stopped))) + 1
    for _ in range(looks):
        reader.read_lifecycle(obs, pending)
    assert all(len(look) <= LIFECYCLE_SUBMISSIONS_PER_LOOK for look in store.looks)
    assert all(stopped <= look for look in store.looks)  # the runs about to end, every look
    assert set().union(*store.looks) == pending  # and everyone else in turn


def test_few_pending_or_the_last_look_read_everything() -> None:
    submissions = [f"sub-{i:03d}" for i in range(3 * LIFECYCLE_SUBMISSIONS_PER_LOOK)]
    reader, store = _reader(set())
    obs = _observations(submissions)
    few = set(submissions[:LIFECYCLE_SUBMISSIONS_PER_LOOK])
    reader.read_lifecycle(obs, few)
    reader.read_lifecycle(obs, None)  # the last look
    assert store.looks == [few, set(submissions)]
    assert len(run_ids_of("sub-000")) == 3  # each submission's every possible run is asked for


def test_the_failure_bucket_is_listed_only_while_a_batch_put_there_is_unseen() -> None:
    listed: list[str] = []

    class Paginator:
        def paginate(self, Bucket: str) -> list[dict[str, Any]]:
            listed.append(Bucket)
            return [{"Contents": [{"Key": "k1"}]}]

    reader, _ = _reader(set())
    reader.resources.router_failure_bucket = "failures"
    reader.s3 = SimpleNamespace(
        get_paginator=lambda name: Paginator(),
        get_object=lambda Bucket, Key: {"Body": SimpleNamespace(read=lambda: b"{}")},
    )
    assert reader.new_failure_records(batches_put=0) == []
    assert listed == []
    assert reader.new_failure_records(batches_put=1) == ["{}"]
    assert reader.new_failure_records(batches_put=1) == []  # seen: no listing
    assert listed == ["failures"]
    reader.new_failure_records(batches_put=None)  # the last look lists whatever the feed says
    assert listed == ["failures", "failures"]
