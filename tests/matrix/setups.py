"""The fault-matrix cases' own setups (a scenario no fault kind describes) and extra checks (what only that
case can say went wrong)."""

from __future__ import annotations

import json
from collections.abc import Callable

from mm_contracts.models.phase import run_id
from tests.matrix.case import (
    N1,
    NE,
    NP,
    S1,
    S2,
)
from tests.matrix.deployment import CHALLENGE_ID
from tests.matrix.world import World


# ---------------------------------------------------------------- custom setups
def unknown_submission_event(world: World) -> None:
    """A STOPPED event of a task with our startedBy for a submission the pipeline never launched (defect 8)."""
    from tests.matrix.deployment import CLUSTER_ARN
    from tests.matrix.lambda_events import stopped_event

    detail = {
        "taskArn": f"{CLUSTER_ARN.replace(':cluster/', ':task/')}/{'f' * 32}",
        "clusterArn": CLUSTER_ARN,
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "startedBy": world.started_by_value(),
        "stopCode": "EssentialContainerExited",
        "stoppedReason": "Essential container in task exited",
        "containers": [{"name": "scorer", "lastStatus": "STOPPED", "exitCode": 0}],
        "overrides": {
            "containerOverrides": [
                {
                    "name": "scorer",
                    "environment": [
                        {"name": "MM_SUBMISSION_ID", "value": S2},
                        {"name": "MM_CHALLENGE_ID", "value": CHALLENGE_ID},
                        {"name": "MM_LAUNCH_ATTEMPT", "value": "1"},
                    ],
                }
            ]
        },
    }
    world.scheduler.at(
        world.clock.start + 10, lambda: world.invoke_completion_async(stopped_event(detail, world.clock()))
    )


def config_broken_then_fixed(world: World) -> None:
    """After the launch the challenge config becomes unusable, and is fixed half an hour later (defect 6)."""
    good = dict(world.config_document)
    world.scheduler.at(world.clock.start + 30, lambda: world.put_config({"challengeId": CHALLENGE_ID}), "config broken")
    world.scheduler.at(world.clock.start + 1800, lambda: world.put_config(good), "config fixed")


def bad_url(world: World) -> None:
    """A routed message whose URL the processor must not launch a scorer on (defect 8)."""
    body = json.loads(world.routed(S2).to_json())
    body["url"] = "file:///etc/passwd"
    world.scheduler.at(world.clock.start, lambda: world.queue.send(json.dumps(body)), "bad url")


def huge_member_id(world: World) -> None:
    from tests.builders import KafkaRecord, bus_envelope, submission_payload

    record = KafkaRecord(
        bus_envelope(submission_payload(submission_id=S2, challenge_id=CHALLENGE_ID, member_id=10**30)),
        offset=world.next_offset(),
        timestamp=int(world.clock() * 1000),
    )
    world.scheduler.at(world.clock.start, lambda: world.kafka_batch([record], 0), "kafka huge member id")


def bad_record_in_outage(world: World) -> None:
    """A record the router skips (a review event), in the same batch as S1, during the SNS outage (defect 9)."""
    from tests.builders import KafkaRecord, review_envelope

    world.submit_to_kafka([S1], extra=[KafkaRecord(review_envelope(S2))])


# ---------------------------------------------------------------- capacity (issue 11): slot accounting
ONE_SLOT: dict[str, object] = {"capacity": {"maxRunningTasks": 1}}  # a second run must wait for the first's slot


def second_waits(world: World) -> None:
    """S2 (another member) arrives while S1 holds the challenge's only slot: it waits, then takes that slot."""
    world.submit_to_queue(S2, at=10, member_id=40_158_995)


def redrive_at(seconds: float) -> Callable[[World], None]:
    """The operator redrives the challenge DLQ (every message back to its queue) `seconds` after the start."""

    def setup(world: World) -> None:
        def redrive() -> None:
            for message in list(world.queue.dead_letters):
                world.queue.dead_letters.remove(message)
                world.queue.send(message.body, attributes=message.attributes)

        world.scheduler.at(world.clock.start + seconds, redrive, "operator redrives the DLQ")

    return setup


def redriven_once(world: World) -> list[str]:
    sends = [m for m in world.queue.sent if S1 in m.body]
    return [] if len(sends) >= 2 else ["the DLQ was never redriven (vacuous case)"]


def s2_waited(world: World) -> list[str]:
    """S2 really waited for S1's slot (else the case shows nothing about slots)."""
    records = world.records()
    first, second = records.get(run_id(S1, "PROVISIONAL")), records.get(run_id(S2, "PROVISIONAL"))
    if first is None or second is None or second.admitted_at is None or first.stopped_at is None:
        return ["S1 or S2 has no admission or stop recorded"]
    if second.admitted_at < first.stopped_at.timestamp():
        return [f"S2 was admitted at {second.admitted_at}, before S1 stopped: it never waited for the slot"]
    if world.ecs_fake.running_most.get(CHALLENGE_ID, 0) > 1:
        return [f"{world.ecs_fake.running_most[CHALLENGE_ID]} tasks ran at once under a cap of 1"]
    return []


# ---------------------------------------------------------------- v6 setups
def skipped_and_invoke_lost(world: World) -> None:
    """The challenge is inactive: the router routes the v6 record with a skip reason; the processor records
    both runs FAILED and its report-due invokes are lost, so only the sweeper can get the summations written."""
    world.set_challenge_active(False)
    world.lose_report_due_invokes = 2


def report_due_invokes_lost(world: World) -> list[str]:
    sent = [event.get("detail", {}).get("runId") for event in world.report_due_invokes]
    if sorted(sent) != sorted([NE, NP]):
        return [f"the processor's report-due invokes were {sent}, expected one per skipped run"]
    if world.lose_report_due_invokes:
        return ["the report-due invokes were never lost (vacuous case)"]
    return []


def scorer_progress_summation(world: World) -> None:
    """The PROVISIONAL scorer posted its in-progress summation before it failed (as Topcoder's scorers do)."""
    world.summations.add_summation(
        submissionId=N1,
        aggregateScore=0,
        isPassing=False,
        isProvisional=True,
        metadata={"testType": "provisional", "testStatus": "IN_PROGRESS", "testProgress": 0.4, "reportedBy": "scorer"},
    )


def patched_not_posted(world: World) -> list[str]:
    posts = [w for w in world.summations.writes if w.method == "POST" and w.body.get("isProvisional")]
    return [f"{len(posts)} PROVISIONAL summation POSTs: the scorer's summation must be updated"] if posts else []
