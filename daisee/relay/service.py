"""A running relay for one loop: the HTTP intake, the SQLite queue and the batcher, started and stopped together."""

from __future__ import annotations

import logging
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from daisee.errors import DaiseeError
from daisee.loop import READING_BATCH, Loop
from daisee.loopback import LOOPBACK
from daisee.relay.intake import CheckedPost, Intake
from daisee.relay.logs import log_event
from daisee.relay.meters import METER_TTL, MeterCache
from daisee.relay.queue import Fate, ReadingQueue
from daisee.relay.ratelimit import RateLimiter
from daisee.relay.server import RelayServer
from daisee.relay.worker import STOP_TIMEOUT, SendingSettings, sending

DEFAULT_PORT = 8552


@dataclass(frozen=True)
class RelaySettings:
    host: str = LOOPBACK
    port: int = DEFAULT_PORT  # 0: any free port (see Relay.url)
    batch_size: int = READING_BATCH
    batch_seconds: float = 10.0
    rate_limit: int = 60  # readings per meter per minute
    meter_ttl: float = METER_TTL
    in_flight: int = 4  # batches sent at once
    keeper_seconds: float | None = None  # also finalize and settle the loop's intervals this often (None: don't)


class Relay:
    """Relays signed readings to `loop` (whose sender pays the gas), queued in the SQLite file `queue_path`."""

    def __init__(self, loop: Loop, queue_path: Path, settings: RelaySettings | None = None) -> None:
        self.loop = loop
        self.settings = settings or RelaySettings()
        self.queue = ReadingQueue(queue_path, loop.domain)
        self.meters = MeterCache(loop, self.settings.meter_ttl)
        # the batcher, and the keeper (readings stop being accepted two intervals ahead of settlement: a relay
        # may keep the loop moving too), in a process of their own where the chain allows
        s = self.settings
        self.sending = sending(
            loop,
            self.queue,
            self.meters,
            SendingSettings(s.batch_size, s.batch_seconds, s.in_flight, s.meter_ttl, s.keeper_seconds),
        )
        self.intake = Intake(self.meters, self.queue, RateLimiter(self.settings.rate_limit), self.sending.wake)
        self._server: RelayServer | None = None
        self._stopped = False

    @property
    def url(self) -> str:
        if self._server is None:
            raise DaiseeError("the relay is not started")
        host, port = self._server.server_address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> None:
        """Listen and start the batcher; raises DaiseeError if the address is taken or the batcher cannot start."""
        try:
            self._server = RelayServer((self.settings.host, self.settings.port), self)
            self.sending.start()
        except (OSError, DaiseeError) as exc:
            self._stopped = True
            if self._server is not None:
                self._server.stop()
            self.meters.close()
            self.queue.close()
            if isinstance(exc, DaiseeError):
                raise
            raise DaiseeError(
                f"cannot listen on {self.settings.host}:{self.settings.port} ({exc.strerror}): "
                "stop what uses it or pick another --port"
            ) from None
        self._server.start()
        self.intake.start()  # a post that came first waits for it
        self.meters.watch()
        log_event(
            "relay_started",
            url=self.url,
            chain_id=self.loop.domain.chain_id,
            loop=self.loop.address,
            account=self.loop.sender.address,
            queue=self.queue.path,
            batch_size=self.settings.batch_size,
            batch_seconds=self.settings.batch_seconds,
            keeper_seconds=self.settings.keeper_seconds or "off",
        )
        if self.settings.host != LOOPBACK:
            log_event("listening_beyond_loopback", logging.WARNING, note="anyone reaching the port can post readings")

    def stop(self) -> None:
        """Stop taking readings, let the requests and the batch in progress finish, close the queue (once)."""
        if self._stopped:
            return
        self._stopped = True
        if self._server is not None:
            self._server.stop()
        self.intake.close()  # what was taken in is on disk
        finished = self.sending.stop(STOP_TIMEOUT)
        depth = self.queue.counts()["queue_depth"]
        self.meters.close()
        if finished:
            self.queue.close()
        else:  # the batcher dies with its process; SQLite keeps every committed step
            log_event("batch_still_in_flight", note="its readings are checked against the chain at the next start")
        log_event("relay_stopped", queue_depth=depth)

    def __enter__(self) -> Relay:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------- the HTTP API

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "chain_id": self.loop.domain.chain_id, "loop": self.loop.address}

    def status(self) -> dict[str, Any]:
        return {
            "chain_id": self.loop.domain.chain_id,
            "loop": self.loop.address,
            **self.queue.counts(),
            **self.sending.status(),
            "watch": self.meters.watch_status(),
        }

    def fate(self, meter_id: bytes, interval: int) -> Fate | None:
        return self.queue.fate(meter_id, interval)

    def admit(self, client: str) -> None:
        self.intake.admit(client)

    def check(self, body: bytes, client: str, *, wait: bool = True) -> CheckedPost:
        return self.intake.check(body, client, wait=wait)

    def commit(self, post: CheckedPost) -> Future[int]:
        return self.intake.commit(post)
