"""Long-running commands: stop cleanly on Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import threading
from types import FrameType


def stop_on_signals() -> threading.Event:
    """An event set once the process gets SIGINT (Ctrl-C) or SIGTERM. Call it before starting the service:
    a signal that comes after the service answers but before the handlers are in place would kill it."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    return stop


def wait_for(stop: threading.Event) -> None:
    """Return once `stop` is set (woken every second: a signal handler runs between two waits)."""
    while not stop.wait(1.0):
        pass
