"""The fault matrix (decision 078): every fault kind, driven through the real functions in virtual time.

Each case asserts, for every submission (v5) or run (v6: `<submissionId>#<PHASE>`): exactly one final state with
the expected reason; no record lost (every routed submission has its item, every message is accounted for); never
two tasks that ran the scorer to completion; never two reviews (v6: never two summations of one phase, and every
request the client sent valid by the v6 spec); a report exactly where one is required; no task left running; the
world quiescent before the horizon; and once drained, every capacity slot free (each pool's `used` 0, no
holder left) and no run still WAITING or ADMITTED (issue 11: slots never leak or double-free under any fault).
A case whose expectation fails names the issue's defect it shows.
"""

from __future__ import annotations

import re

import pytest

from fault_injection import FaultKind
from mm_contracts.models.lifecycle import LifecycleRecord, SubmissionState
from mm_contracts.models.phase import RUN_ID_SEPARATOR, Platform, ScoringPhase
from tests.matrix.cases import CASES, N1, S1, Case, Expect
from tests.matrix.world import World


def run_case(case: Case) -> World:
    world = World(case.plan(), scripts=case.scripts, config=dict(case.config), platform=case.platform)
    first = N1 if case.platform is Platform.V6 else S1
    if case.submit and case.via_kafka:
        world.submit_to_kafka([first])
    elif case.submit:
        world.submit_to_queue(first)
    if case.setup is not None:
        case.setup(world)
    world.run()
    return world


def describe(world: World) -> str:
    lines = [f"virtual {world.clock.elapsed:.0f} s, crashes {world.crashes[:5]}"]
    for key, record in world.records().items():
        lines.append(
            f"{key[-16:]}: {record.state.value} reason={record.reason!r} report={record.report_status} "
            f"attempt={record.launch_attempt} deadline={record.deadline_at}"
        )
        lines += [f"    {h.state}: {h.detail[:140]}" for h in record.history]
    for task in world.ecs_fake.tasks.values():
        lines.append(
            f"task {task.arn[-6:]} {task.submission_id[-4:]} {task.last_status} {task.stop_code} "
            f"completed={task.ran_to_completion} reason={task.stopped_reason!r}"
        )
    lines.append(f"reviews {[(r.submission_id[-4:], r.at - world.clock.start) for r in world.api.reviews]}")
    if world.platform is Platform.V6:
        writes = [(w.method, w.summation_id[:8], w.at - world.clock.start) for w in world.summations.writes]
        lines.append(f"summation writes {writes}; requests {world.summations.requests[:12]}")
        for item in world.summations.store.items:
            flags = [flag for flag in ("isExample", "isProvisional", "isFinal") if item.get(flag)]
            lines.append(f"    summation {item['id'][:8]} {flags} score={item['aggregateScore']} {item['metadata']}")
    lines.append(f"completion errors {[c.error for c in world.completion_calls if c.error][:6]}")
    lines.append(f"completion DLQ {len(world.completion_dlq)}, challenge DLQ {len(world.queue.dead_letters)}")
    return "\n".join(lines)


def check(world: World, key: str, expect: Expect) -> list[str]:
    """`key`: a submission id (v5: its one run) or a run id (the run of that phase only)."""
    sid, _, phase = key.partition(RUN_ID_SEPARATOR)
    problems = record_problems(world.record_of(key), expect)
    reviews = world.api.reviews_of(sid)
    if len(reviews) != expect.reviews:
        problems.append(f"{len(reviews)} reviews, expected {expect.reviews}")
    if expect.summations is not None:
        problems += check_summations(world, sid, ScoringPhase(phase), expect)
    problems += task_problems(world, sid, phase, expect)
    in_dlq = any(sid in m.body for m in world.queue.dead_letters)
    if expect.dead_lettered_message is not None and in_dlq != expect.dead_lettered_message:
        problems.append(f"routed message in the challenge DLQ: {in_dlq}, expected {expect.dead_lettered_message}")
    return problems


def record_problems(record: LifecycleRecord | None, expect: Expect) -> list[str]:
    """The run's status item against the expectation: there (or not), its state, reason and report status."""
    if expect.state is None:
        if record is not None:
            return [f"an item exists ({record.state.value}) for a submission the pipeline must not track"]
        return []
    if record is None:
        return [f"no item (expected {expect.state.value}): the record was lost"]
    problems = []
    if record.state is not expect.state:
        problems.append(f"state {record.state.value}, expected {expect.state.value} (reason {record.reason!r})")
    if expect.reason and not re.search(expect.reason, record.reason or "", re.IGNORECASE):
        problems.append(f"reason {record.reason!r} does not match {expect.reason!r}")
    if expect.report is not None and record.report_status is not expect.report:
        problems.append(f"report status {record.report_status}, expected {expect.report.value}")
    return problems


def task_problems(world: World, sid: str, phase: str, expect: Expect) -> list[str]:
    """The run's tasks: at most one ran the scorer to completion (exactly as expected), and how many started."""
    problems = []
    tasks = world.ecs_fake.tasks_of(sid, phase or None)
    completed = [t for t in tasks if t.ran_to_completion]
    wanted = expect.completions
    if wanted is None:
        wanted = 1 if expect.state is SubmissionState.SUCCEEDED else None
    if len(completed) > 1:
        problems.append(f"{len(completed)} tasks ran the scorer to completion (at most one may)")
    elif wanted is not None and len(completed) != wanted:
        problems.append(f"{len(completed)} tasks ran the scorer to completion, expected {wanted}")
    if expect.tasks_started is not None and len(tasks) != expect.tasks_started:
        problems.append(f"{len(tasks)} tasks started, expected {expect.tasks_started}")
    return problems


def check_summations(world: World, sid: str, phase: ScoringPhase, expect: Expect) -> list[str]:
    """The phase's summations at the end: how many, how many of ours, and what the terminal one says."""
    problems = []
    summations = world.summations.summations_of(sid, phase)
    ours = [s for s in summations if (s.get("metadata") or {}).get("reportedBy") == "mm-processor"]
    if len(summations) != expect.summations:
        problems.append(f"{len(summations)} {phase.value} summations, expected {expect.summations}")
    if expect.our_summations is not None and len(ours) != expect.our_summations:
        problems.append(f"{len(ours)} {phase.value} summations written by us, expected {expect.our_summations}")
    if expect.summation_status is not None:
        terminal = [s for s in summations if (s.get("metadata") or {}).get("testStatus") == expect.summation_status]
        if len(terminal) != 1:
            problems.append(f"no single {phase.value} summation with testStatus {expect.summation_status}")
        else:
            (summation,) = terminal
            metadata = summation["metadata"]
            said = (summation.get("aggregateScore"), summation.get("isPassing"), metadata.get("runId"))
            if said != (-1, False, f"{sid}{RUN_ID_SEPARATOR}{phase.value}"):
                problems.append(f"terminal summation says (aggregateScore, isPassing, runId) = {said}")
            if expect.reason and not re.search(expect.reason, str(metadata.get("reason")), re.IGNORECASE):
                problems.append(f"summation reason {metadata.get('reason')!r} does not match {expect.reason!r}")
            if metadata.get("timed_out", False) is not (expect.state is SubmissionState.TIMED_OUT):
                problems.append(f"summation timed_out={metadata.get('timed_out')!r} for a {expect.state} run")
    return problems


def v6_problems(world: World) -> list[str]:
    """Whatever the case: one summation per (submission, phase) at most, every request by the spec, no v5 call."""
    problems = []
    per_run: dict[tuple[str, str], int] = {}
    for item in world.summations.store.items:
        for phase in ScoringPhase:
            if item.get(phase.summation_flag) is True:
                run = (str(item["submissionId"]), phase.value)
                per_run[run] = per_run.get(run, 0) + 1
    problems += [f"{n} summations for {sid}#{phase}" for (sid, phase), n in per_run.items() if n > 1]
    problems += [f"v6 spec: {v}" for v in world.summations.violations[:5]]
    if world.api.requests:
        problems.append(f"v5 Submission API called for a v6 challenge: {world.api.requests[:3]}")
    return problems


def capacity_problems(world: World) -> list[str]:
    """The drained world's slots: every pool at 0 with no holder, no queue entry, no run waiting or admitted."""
    problems = []
    store = world.capacity_store(admin=True)
    snapshot = store.pools()
    for pool in snapshot.all_pools():
        if pool.used != 0 or pool.holders:
            problems.append(f"capacity pool {pool.sk}: used {pool.used}, holders {sorted(pool.holders)} after drain")
        if pool.waiting != 0:
            problems.append(f"capacity pool {pool.sk}: waiting {pool.waiting} after drain")
    for challenge_id in world.challenge_ids:
        entries = store.queue_entries(challenge_id)
        if entries:
            left = [entry.run_id for entry in entries][:3]
            problems.append(f"{len(entries)} queue entries left for {challenge_id[:8]}: {left}")
    stuck = [r for r in world.records().values() if r.state in (SubmissionState.WAITING, SubmissionState.ADMITTED)]
    problems += [f"{r.run_id[-16:]}: still {r.state.value} after drain" for r in stuck]
    return problems


def case_problems(case: Case, world: World) -> list[str]:
    """Everything wrong with one case's run (empty: survived). Shared with `benchmarks/matrix_benchmark.py`."""
    problems = []
    for key, expect in case.expect.items():
        problems += [f"{key[-16:]}: {p}" for p in check(world, key, expect)]
    if world.platform is Platform.V6:
        problems += v6_problems(world)
        unexpected = sorted(set(world.records()) - set(case.expect))
        problems += [f"{key}: a run the case does not expect" for key in unexpected]
    if case.extra_check is not None:
        problems += case.extra_check(world)
    problems += drained_problems(world)
    problems += capacity_problems(world)
    if any(won > 1 for won in world.interleaver.claims_won):
        problems.append(f"concurrent deliveries both won the launch claim: {world.interleaver.claims_won}")
    if case.must_fire:
        problems += [f"fault {k.value} never fired (vacuous case)" for k in case.kinds if not world.plan.fire_count(k)]
    if case.name.startswith("SNS outage"):
        audits = len(world.audit.entries)
        if audits != 1:
            problems.append(f"{audits} audit records for 1 skipped Kafka record")
    return problems


def drained_problems(world: World) -> list[str]:
    """The world at the end: no task running, no message queued, nothing pending."""
    problems = []
    if world.ecs_fake.running():
        problems.append(f"{len(world.ecs_fake.running())} task(s) still running at the end")
    if not world.queue.empty:
        problems.append(f"{len(world.queue.messages)} message(s) still in the challenge queue")
    if world.scheduler.busy or not world.quiescent():
        problems.append("not quiescent at the horizon (something is stuck or loops)")
    return problems


def _param(case: Case) -> object:
    if case.open_defect:
        return pytest.param(case, id=case.name, marks=pytest.mark.xfail(reason=case.open_defect, strict=True))
    return pytest.param(case, id=case.name)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_fault_matrix(case: Case, aws: None) -> None:
    # Given one submission (or a few) and one fault kind (or a pair); When the world runs until quiescent
    world = run_case(case)
    # Then every submission is in its one expected final state, nothing lost, nothing twice
    problems = case_problems(case, world)
    assert not problems, f"[defect {case.defect or '-'}] " + "; ".join(problems) + "\n" + describe(world)


def test_every_fault_kind_has_a_case() -> None:
    covered = {kind for case in CASES for kind in case.kinds}
    missing = [kind.value for kind in FaultKind if kind not in covered]
    assert not missing, f"fault kinds without a matrix case: {missing}"
