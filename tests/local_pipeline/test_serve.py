"""`LocalPipeline.serve()`: everything up (AWS's side polling, the records fed) until `stop_serving()`."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from infrastructure.config import load_environment
from local_pipeline.engine import LocalPipeline
from local_pipeline.scenario import generate

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-serve")]


def test_serve_runs_the_records_it_was_given_until_told_to_stop(tmp_path: Path) -> None:
    config = load_environment("example")
    records = generate(config, 1, seed=11)
    with LocalPipeline(config, log_dir=tmp_path / "logs") as pipeline:
        serving = threading.Thread(target=pipeline.serve, args=(records,), daemon=True)
        serving.start()
        assert pipeline.standin is not None
        deadline = time.monotonic() + 120
        while not pipeline.standin.reviews and time.monotonic() < deadline:
            time.sleep(0.5)
        # the record went the whole way: routed, launched, scored, reported to the stand-in
        assert len(pipeline.standin.reviews) == 1
        assert serving.is_alive()  # still serving after the work is done
        pipeline.stop_serving()
        serving.join(timeout=10)
        assert not serving.is_alive()
