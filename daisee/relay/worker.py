"""The relay's sending side — the batcher and its keeper — in a process of its own, so that the HTTP intake
has an interpreter to itself: in one process the batcher's encoding, signing and receipt reading share the
interpreter lock with the intake and halve what it takes in.

The child rebuilds the loop from what can cross a pipe (the chain's URL and transaction policy, the sender's
address and key, the loop's address), opens the same SQLite queue (WAL: the intake adds, the batcher takes)
and its own meter cache, which it brings up to the chain before each batch. The parent drives it through a
pipe: it wakes it when readings are queued, asks its status, stops it; the child's log lines come back the
same way and are logged by the parent. The child ignores SIGINT and SIGTERM and stops when told or when the
pipe closes, so a Ctrl-C lets the batch in flight finish and the child never outlives the relay.

A loop on the embedded chain lives in this process only: its batcher runs in a thread here, as does one
whose key this process cannot hand over (a sender without a local key that the node does not unlock).
"""

from __future__ import annotations

import logging
import multiprocessing
import queue as queue_module
import signal
import threading
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.util import Finalize
from pathlib import Path
from typing import Any, Protocol

from eth_account import Account

from daisee.chain.connect import connect, describe_error
from daisee.chain.networks import TxPolicy
from daisee.chain.transact import Sender
from daisee.errors import DaiseeError
from daisee.keeper import Keeper
from daisee.loop import Loop
from daisee.relay.batcher import Batcher
from daisee.relay.logs import log_event
from daisee.relay.meters import MeterCache
from daisee.relay.queue import ReadingQueue

START_TIMEOUT = 60.0  # seconds for the child to import, connect and open the queue (a busy machine included)
STATUS_TIMEOUT = 10.0
STOP_TIMEOUT = 30.0  # seconds to wait for a batch in flight; its readings stay `submitted` if it outlasts this
LOGGERS = ("daisee.relay", "daisee.keeper")


@dataclass(frozen=True)
class SendingSettings:
    """What the sending side needs of the relay's settings."""

    batch_size: int
    batch_seconds: float
    in_flight: int
    meter_ttl: float
    keeper_seconds: float | None


class Sending(Protocol):
    """The batcher and keeper, wherever they run."""

    def start(self) -> None: ...

    def wake(self) -> None:
        """Readings were queued: look whether a batch is due."""
        ...

    def status(self) -> dict[str, Any]:
        """`batches`, `last_batch`, `last_error` (of the batcher) and `keeper` (None without one)."""
        ...

    def stop(self, timeout: float) -> bool:
        """Stop after the batch and settlement in flight; False if one still runs after `timeout` seconds."""
        ...


def sending(loop: Loop, queue: ReadingQueue, meters: MeterCache, settings: SendingSettings) -> Sending:
    """The relay's sending side: in a process of its own where the loop can be rebuilt there, else in threads
    of this one, sharing the relay's queue and meter cache."""
    recipe = _LoopRecipe.of(loop)
    if recipe is None:
        return SendingThreads(loop, queue, meters, settings)
    return SendingProcess(recipe, queue.path, settings)


# ---------------------------------------------------------------- in this process


class SendingThreads:
    """The batcher and the keeper in threads of this process."""

    def __init__(self, loop: Loop, queue: ReadingQueue, meters: MeterCache, settings: SendingSettings) -> None:
        self.batcher = Batcher(
            loop,
            queue,
            meters,
            batch_size=settings.batch_size,
            batch_seconds=settings.batch_seconds,
            in_flight=settings.in_flight,
        )
        seconds = settings.keeper_seconds
        self.keeper = None if seconds is None else Keeper(loop, seconds)

    def start(self) -> None:
        self.batcher.start()
        if self.keeper is not None:
            self.keeper.start()

    def wake(self) -> None:
        self.batcher.wake()

    def status(self) -> dict[str, Any]:
        batch, error = self.batcher.last_batch, self.batcher.last_error
        return {
            "batches": self.batcher.batches,
            "last_batch": None if batch is None else asdict(batch),
            "last_error": None if error is None else {"error": error[0], "at": error[1]},
            "keeper": None if self.keeper is None else self.keeper.status(),
        }

    def stop(self, timeout: float) -> bool:
        finished = self.batcher.stop(timeout)
        if self.keeper is not None and not self.keeper.close(timeout):
            log_event("settlement_still_in_flight", note="the next keeper pass carries on from the chain's state")
        return finished


# ---------------------------------------------------------------- in a child process


@dataclass(frozen=True)
class _LoopRecipe:
    """A loop and its sender, in picklable parts (the key only crosses a pipe to this relay's own child)."""

    url: str = field(repr=False)  # it may carry a provider's API key
    chain_id: int
    network: str | None
    policy: TxPolicy
    sender: str
    key: bytes | None = field(repr=False)
    loop: str

    @classmethod
    def of(cls, loop: Loop) -> _LoopRecipe | None:
        """The recipe of `loop`, or None where another process cannot rebuild it."""
        sender, chain = loop.sender, loop.sender.chain
        if chain.url is None:  # the embedded chain
            return None
        if sender.account is None and not (chain.is_dev and sender.address in chain.dev_accounts()):
            return None  # a key only this process's middleware holds
        key = None if sender.account is None else bytes(sender.account.key)
        return cls(chain.url, chain.chain_id, chain.network, chain.policy, sender.address, key, loop.address)

    def build(self) -> Loop:
        chain = connect(self.url, expected_chain_id=self.chain_id)
        chain.network, chain.policy = self.network, self.policy
        if self.key is None:
            return Loop(Sender(chain, chain.w3.to_checksum_address(self.sender)), self.loop)
        return Loop(Sender.local(chain, Account.from_key(self.key)), self.loop)


class SendingProcess:
    """The batcher and the keeper in a child process, driven through a pipe."""

    def __init__(self, recipe: _LoopRecipe, queue_path: Path, settings: SendingSettings) -> None:
        context = multiprocessing.get_context("forkserver")
        # children fork from a server that imported this module once: no re-import at each relay start, and
        # no copy of this process's threads and locks
        context.set_forkserver_preload([__name__])
        child_commands, self._commands = context.Pipe(duplex=False)  # parent → child
        self._events, child_events = context.Pipe(duplex=False)  # child → parent
        levels = {name: logging.getLogger(name).getEffectiveLevel() for name in LOGGERS}
        self._process = context.Process(
            target=_child_main,
            args=(recipe, queue_path, settings, levels, child_commands, child_events),
            name="daisee-relay-sending",
            daemon=True,
        )
        self._child_ends = (child_commands, child_events)
        self._send_lock = threading.Lock()
        self._status_lock = threading.Lock()
        self._replies: queue_module.Queue[Any] = queue_module.Queue()
        self._reader = threading.Thread(target=self._read_events, name="relay-sending-events", daemon=True)
        # a process that exits without stopping the relay closes the pipe first: the child sees it and stops,
        # and multiprocessing's join of its children at exit returns
        Finalize(self, self._commands.close, exitpriority=10)

    def start(self) -> None:
        """Start the child; raises DaiseeError with its reason if it cannot rebuild the loop or open the queue."""
        self._process.start()
        for end in self._child_ends:
            end.close()  # the child holds them now: its exit closes the pipes
        self._reader.start()
        try:
            started = self._replies.get(timeout=START_TIMEOUT)
        except queue_module.Empty:
            self._process.kill()
            raise DaiseeError(f"the relay's batcher did not start within {START_TIMEOUT:g} s") from None
        if started is not None:
            self._process.join(STATUS_TIMEOUT)
            raise DaiseeError(f"the relay's batcher could not start: {started}")

    @property
    def exitcode(self) -> int | None:
        """The child's exit code once it ended: 0 when it stopped after its batch, None while it runs."""
        return self._process.exitcode

    def wake(self) -> None:
        self._send(("wake",))

    def status(self) -> dict[str, Any]:
        with self._status_lock:  # one question at a time, so that each reply is its own
            while not self._replies.empty():  # the late answer to a question that timed out
                self._replies.get_nowait()
            if not self._send(("status",)):
                return _stopped_status()
            try:
                return dict(self._replies.get(timeout=STATUS_TIMEOUT))
            except queue_module.Empty:
                return _stopped_status()

    def stop(self, timeout: float) -> bool:
        self._send(("stop", timeout))
        self._process.join(timeout + STATUS_TIMEOUT)
        finished = self._process.exitcode == 0
        if self._process.is_alive():  # a batch outlasted the timeout: its readings stay `submitted`
            self._process.kill()
            self._process.join()
        self._commands.close()
        self._reader.join(STATUS_TIMEOUT)
        return finished

    def _send(self, message: tuple[Any, ...]) -> bool:
        with self._send_lock:
            try:
                self._commands.send(message)
            except (BrokenPipeError, OSError):  # the child is gone
                return False
        return True

    def _read_events(self) -> None:
        """Log the child's lines here, and hand its replies to whoever asked."""
        while True:
            try:
                kind, *payload = self._events.recv()
            except (EOFError, OSError):
                return
            if kind == "log":
                name, level, message = payload
                logging.getLogger(name).log(level, message)
            else:
                self._replies.put(payload[0])


def _stopped_status() -> dict[str, Any]:
    return {"batches": None, "last_batch": None, "last_error": {"error": "the batcher is not running"}, "keeper": None}


class _PipeHandler(logging.Handler):
    """Sends each record's message to the parent, which logs it under the same logger and level."""

    def __init__(self, events: Connection, lock: threading.Lock) -> None:
        super().__init__()
        self.events, self.send_lock = events, lock

    def emit(self, record: logging.LogRecord) -> None:
        try:
            with self.send_lock:
                self.events.send(("log", record.name, record.levelno, record.getMessage()))
        except (BrokenPipeError, OSError):  # the parent is gone: nobody to tell
            pass


def _child_main(
    recipe: _LoopRecipe,
    queue_path: Path,
    settings: SendingSettings,
    levels: dict[str, int],
    commands: Connection,
    events: Connection,
) -> None:
    """The child: rebuild, start, then follow the parent's commands until told to stop or the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop, after the batch in flight
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    lock = threading.Lock()
    handler = _PipeHandler(events, lock)
    for name, level in levels.items():
        logger = logging.getLogger(name)
        logger.handlers, logger.propagate = [handler], False
        logger.setLevel(level)
    try:
        loop = recipe.build()
        queue = ReadingQueue(queue_path, loop.domain)
        meters = MeterCache(loop, settings.meter_ttl)
        meters.watch()  # the batcher's checks find every meter cached, as the relay's do
        threads = SendingThreads(loop, queue, meters, settings)
        threads.start()
    except Exception as exc:  # reported to the parent, which raises it in one line
        with lock:
            events.send(("reply", describe_error(exc, recipe.url)))
        return
    with lock:
        events.send(("reply", None))
    timeout = STOP_TIMEOUT  # if the parent goes away without saying how long
    while True:
        try:
            command, *args = commands.recv()
        except (EOFError, OSError):  # the parent is gone
            command = "stop"
        if command == "wake":
            threads.wake()
        elif command == "status":
            with lock:
                events.send(("reply", threads.status()))
        else:
            timeout = args[0] if args else timeout
            break
    finished = threads.stop(timeout)
    meters.close()
    if finished:
        queue.close()
    raise SystemExit(0 if finished else 1)
