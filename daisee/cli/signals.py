"""Long-running commands: block until Ctrl-C or SIGTERM, then let the caller stop cleanly."""

from __future__ import annotations

import signal
import threading
from types import FrameType


def until_stopped() -> None:
    """Return once the process gets SIGINT (Ctrl-C) or SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    while not stop.wait(1.0):
        pass
