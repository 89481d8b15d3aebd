"""The fault matrix (decision 078): every fault kind, driven through the real functions in virtual time.

Each case asserts, for every submission: exactly one final state with the expected reason; no record lost
(every routed submission has its item, every message is accounted for); never two tasks that ran the scorer
to completion; never two reviews; a review exactly where one is required; no task left running; the world
quiescent before the horizon. A case whose expectation fails names the issue's defect it shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from moto import mock_aws

from fault_injection import FaultKind
from mm_shared import aws as aws_clients
from mm_shared.models.lifecycle import SubmissionState
from tests.matrix.cases import CASES, S1, Case, Expect
from tests.matrix.world import World


@pytest.fixture
def fresh_aws() -> Iterator[None]:
    aws_clients.reset_clients()
    with mock_aws():
        yield
    aws_clients.reset_clients()


def run_case(case: Case) -> World:
    world = World(case.plan(), scripts=case.scripts, config=dict(case.config))
    if case.submit and case.via_kafka:
        world.submit_to_kafka([S1])
    elif case.submit:
        world.submit_to_queue(S1)
    if case.setup is not None:
        case.setup(world)
    world.run()
    return world


def describe(world: World) -> str:
    lines = [f"virtual {world.clock.elapsed:.0f} s, crashes {world.crashes[:5]}"]
    for sid, record in world.records().items():
        lines.append(
            f"{sid[-4:]}: {record.state.value} reason={record.reason!r} report={record.report_status} "
            f"attempt={record.launch_attempt} deadline={record.deadline_at}"
        )
        lines += [f"    {h.state}: {h.detail[:140]}" for h in record.history]
    for task in world.ecs_fake.tasks.values():
        lines.append(
            f"task {task.arn[-6:]} {task.submission_id[-4:]} {task.last_status} {task.stop_code} "
            f"completed={task.ran_to_completion} reason={task.stopped_reason!r}"
        )
    lines.append(f"reviews {[(r.submission_id[-4:], r.at - world.clock.start) for r in world.api.reviews]}")
    lines.append(f"completion errors {[c.error for c in world.completion_calls if c.error][:6]}")
    lines.append(f"completion DLQ {len(world.completion_dlq)}, challenge DLQ {len(world.queue.dead_letters)}")
    return "\n".join(lines)


def check(world: World, sid: str, expect: Expect) -> list[str]:
    problems = []
    record = world.records().get(sid)
    reviews = world.api.reviews_of(sid)
    tasks = world.ecs_fake.tasks_of(sid)
    completed = [t for t in tasks if t.ran_to_completion]
    if expect.state is None:
        if record is not None:
            problems.append(f"an item exists ({record.state.value}) for a submission the pipeline must not track")
    elif record is None:
        problems.append(f"no item (expected {expect.state.value}): the record was lost")
    else:
        if record.state is not expect.state:
            problems.append(f"state {record.state.value}, expected {expect.state.value} (reason {record.reason!r})")
        if expect.reason and not re.search(expect.reason, record.reason or "", re.IGNORECASE):
            problems.append(f"reason {record.reason!r} does not match {expect.reason!r}")
        if expect.report is not None and record.report_status is not expect.report:
            problems.append(f"report status {record.report_status}, expected {expect.report.value}")
    if len(reviews) != expect.reviews:
        problems.append(f"{len(reviews)} reviews, expected {expect.reviews}")
    wanted = expect.completions
    if wanted is None:
        wanted = 1 if expect.state is SubmissionState.SUCCEEDED else None
    if len(completed) > 1:
        problems.append(f"{len(completed)} tasks ran the scorer to completion (at most one may)")
    elif wanted is not None and len(completed) != wanted:
        problems.append(f"{len(completed)} tasks ran the scorer to completion, expected {wanted}")
    if expect.tasks_started is not None and len(tasks) != expect.tasks_started:
        problems.append(f"{len(tasks)} tasks started, expected {expect.tasks_started}")
    in_dlq = any(sid in m.body for m in world.queue.dead_letters)
    if expect.dead_lettered_message is not None and in_dlq != expect.dead_lettered_message:
        problems.append(f"routed message in the challenge DLQ: {in_dlq}, expected {expect.dead_lettered_message}")
    return problems


def case_problems(case: Case, world: World) -> list[str]:
    """Everything wrong with one case's run (empty: survived). Shared with `benchmarks/matrix_benchmark.py`."""
    problems = []
    for sid, expect in case.expect.items():
        problems += [f"{sid[-4:]}: {p}" for p in check(world, sid, expect)]
    if world.ecs_fake.running():
        problems.append(f"{len(world.ecs_fake.running())} task(s) still running at the end")
    if not world.queue.empty:
        problems.append(f"{len(world.queue.messages)} message(s) still in the challenge queue")
    if world.scheduler.busy or not world._quiescent():
        problems.append("not quiescent at the horizon (something is stuck or loops)")
    if any(won > 1 for won in world.interleaver.claims_won):
        problems.append(f"concurrent deliveries both won the launch claim: {world.interleaver.claims_won}")
    if case.must_fire:
        problems += [f"fault {k.value} never fired (vacuous case)" for k in case.kinds if not world.plan.fire_count(k)]
    if case.name.startswith("SNS outage"):
        audits = len(world.audit.entries)
        if audits != 1:
            problems.append(f"{audits} audit records for 1 skipped Kafka record")
    return problems


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault_matrix(case: Case, fresh_aws: None) -> None:
    # Given one submission (or a few) and one fault kind (or a pair); When the world runs until quiescent
    world = run_case(case)
    # Then every submission is in its one expected final state, nothing lost, nothing twice
    problems = case_problems(case, world)
    assert not problems, f"[defect {case.defect or '-'}] " + "; ".join(problems) + "\n" + describe(world)


def test_every_fault_kind_has_a_case() -> None:
    covered = {kind for case in CASES for kind in case.kinds}
    missing = [kind.value for kind in FaultKind if kind not in covered]
    assert not missing, f"fault kinds without a matrix case: {missing}"
