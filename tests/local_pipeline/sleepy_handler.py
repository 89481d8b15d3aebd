"""A handler for the function pool's tests: it sleeps `event["sleep"]` seconds and answers its process id (which
instance served the invocation). Standard library only, so an instance starts in a fraction of a second."""

from __future__ import annotations

import os
import time
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    time.sleep(float(event.get("sleep", 0)))
    return {"pid": os.getpid()}
