"""The replay of Kafka on-failure records (decision 055): stored records back into MSK events for the router.

The records themselves (what Lambda writes to the router's on-failure bucket) are contracts:
`mm_contracts.models.kafka_failure`. `replay_events()` turns them back into MSK events for the router (invoke it
with each one). The router is idempotent (audit marks, status table: decisions 002, 075), so replaying a record
twice is safe. The operator tool, the local pipeline and the tests share it.

    python -m mm_adapters.kafka_failures <downloaded-objects-dir> <events-dir>
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mm_contracts.models.kafka_failure import FailureRecordError, KafkaFailureRecord


def replay_events(
    records: Iterable[KafkaFailureRecord], *, seen: set[tuple[str, int, int]] | None = None
) -> list[dict[str, Any]]:
    """MSK events to invoke the router with, one per failure record, each Kafka record at most once.

    Records are taken in order of their first offset per partition; a Kafka record already in an earlier event
    (the same object stored twice, or overlapping batches) is dropped, and an event left empty is skipped.
    `seen` (topic, partition, offset) carries that across calls: a caller replaying one object at a time (to mark
    each object once its events went in) passes the same set to every call, and it is updated in place.
    """

    def first_offset(record: KafkaFailureRecord) -> tuple[str, int]:
        spans = record.spans()
        return (spans[0][0], spans[0][1]) if spans else ("", 0)

    seen = set() if seen is None else seen
    events: list[dict[str, Any]] = []
    for index, record in enumerate(sorted(records, key=first_offset)):
        event = record.original_event(source=f"failure record {index}")
        kept: dict[str, list[dict[str, Any]]] = {}
        for key, batch in event["records"].items():
            for kafka_record in sorted(batch, key=lambda r: r["offset"]):
                identity = (kafka_record["topic"], kafka_record["partition"], kafka_record["offset"])
                if identity not in seen:
                    seen.add(identity)
                    kept.setdefault(key, []).append(kafka_record)
        if kept:
            events.append({**event, "records": kept})
    return events


def replay_events_from_files(paths: Iterable[Path]) -> list[dict[str, Any]]:
    return replay_events(KafkaFailureRecord.parse(path.read_bytes(), source=str(path)) for path in paths)


def main(argv: list[str] | None = None) -> int:
    """`<objects-dir> <events-dir>`: write `event-0001.json`... for `aws lambda invoke --payload fileb://...`."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m mm_adapters.kafka_failures <downloaded-objects-dir> <events-dir>", file=sys.stderr)
        return 2
    objects, out = Path(args[0]), Path(args[1])
    paths = sorted(p for p in objects.rglob("*") if p.is_file())
    try:
        events = replay_events_from_files(paths)
    except FailureRecordError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    for number, event in enumerate(events, start=1):
        (out / f"event-{number:04d}.json").write_text(json.dumps(event))
    total = sum(len(batch) for event in events for batch in event["records"].values())
    print(f"{len(events)} events, {total} Kafka records, from {len(paths)} failure records -> {out}")
    return 0


__all__ = [
    "main",
    "replay_events",
    "replay_events_from_files",
]


if __name__ == "__main__":
    raise SystemExit(main())
