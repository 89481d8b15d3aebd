"""The local pipeline served in the background for the operator e2e tests, which drive it with `mm-processor
--endpoint-url` as an operator drives AWS (decision 107): no scheduled sweep (an hour away), so what admits,
stops or redrives a run is the operator's command."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from infrastructure.config import load_environment
from local_pipeline.deviations import LocalDeviations
from local_pipeline.engine import LocalPipeline
from local_pipeline.scenario import InputRecord

NO_SCHEDULED_SWEEP_SECONDS = 3600.0


@contextmanager
def serving(environment: str, log_dir: Path, records: Sequence[InputRecord] = ()) -> Iterator[LocalPipeline]:
    """The environment's local pipeline serving (`records` fed first) until the block ends."""
    deviations = replace(LocalDeviations(), sweep_interval_seconds=NO_SCHEDULED_SWEEP_SECONDS)
    with LocalPipeline(load_environment(environment), deviations=deviations, log_dir=log_dir) as pipeline:
        arguments = (list(records),) if records else ()
        thread = threading.Thread(target=pipeline.serve, args=arguments, name="serve", daemon=True)
        thread.start()
        try:
            yield pipeline
        finally:
            pipeline.stop_serving()
            thread.join(timeout=30)


def wait_until(check: Callable[[], bool], what: str, seconds: float = 120.0, poll: float = 0.5) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(poll)
