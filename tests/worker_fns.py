"""Functions a test hands to the parse worker (a spawned process imports them by name)."""

from __future__ import annotations

import os
import time


def sleep_then(seconds: float, value: int) -> tuple[int, int]:
    time.sleep(seconds)
    return os.getpid(), value
