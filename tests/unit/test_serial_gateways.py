"""The TIC and DSMR gateways on a real serial device: a pseudo-terminal pair, the meter writing on the master side."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daisee.errors import DaiseeError
from daisee.gateways import Gateway, MeterSample
from daisee.gateways.dsmr import DsmrGateway
from daisee.gateways.tic import TicGateway

FIXTURES = Path(__file__).parents[1] / "fixtures" / "meters"
STANDARD = (FIXTURES / "tic" / "standard_stream_raw.txt").read_bytes()
HISTORIQUE = (FIXTURES / "tic" / "historique_captured_frames.bin").read_bytes()
WAIT = 10.0  # seconds for anything that should take milliseconds


class Meter:
    """The meter's side of a pseudo-terminal: what it writes, the gateway reads from `port`."""

    def __init__(self) -> None:
        self._master, self._slave = os.openpty()
        self.port = os.ttyname(self._slave)

    def send(self, data: bytes) -> None:
        """Write from a thread, as a meter would, while the gateway reads."""

        def write() -> None:
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(self._master, view[:256]) :]
            except OSError:  # the test is over and closed the pty before the gateway read it all
                return

        threading.Thread(target=write, daemon=True).start()

    def close(self) -> None:
        os.close(self._master)
        os.close(self._slave)


class Reader:
    """Runs a gateway's `samples()` in a thread and hands them over one by one."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._samples: queue.Queue[MeterSample] = queue.Queue()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for sample in self.gateway.samples():
            self._samples.put(sample)

    def take(self, count: int) -> list[MeterSample]:
        return [self._samples.get(timeout=WAIT) for _ in range(count)]

    def stop(self) -> None:
        self.gateway.close()
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "samples() did not end after close()"


@pytest.fixture
def meter() -> Iterator[Meter]:
    pty = Meter()
    yield pty
    pty.close()


def test_tic_gateway_reads_a_standard_linky(meter: Meter) -> None:
    reader = Reader(TicGateway(meter.port, mode="standard"))
    before = time.time()
    meter.send(STANDARD)

    samples = reader.take(7)
    reader.stop()

    assert [s.import_wh for s in samples] == [21849106, 21849107, 21849107, 21849108, 21849108, 21849109, 21849109]
    assert [len(s.rejected) for s in samples] == [0, 1, 3, 2, 3, 3, 0]
    assert {s.meter for s in samples} == {"041776199277"}
    assert before <= samples[0].timestamp <= samples[-1].timestamp <= time.time()


def test_tic_gateway_in_auto_mode_reads_a_historique_linky(meter: Meter) -> None:
    gateway = TicGateway(meter.port)
    assert gateway.baudrate == 1200
    reader = Reader(gateway)
    meter.send(HISTORIQUE)

    samples = reader.take(10)
    reader.stop()

    assert samples[0].import_wh == 47371616
    assert samples[-1].import_wh == 47371636
    assert {s.meter for s in samples} == {"021861348497"}


def test_tic_gateway_in_auto_mode_switches_baud_rate_when_no_frame_arrives(meter: Meter) -> None:
    gateway = TicGateway(meter.port, switch_after=0.3)
    reader = Reader(gateway)
    meter.send(b"\x02\x7f\x7f\x03" * 3)  # noise: framed, but not one valid group

    deadline = time.monotonic() + WAIT
    while gateway.baudrate == 1200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gateway.baudrate == 9600
    meter.send(STANDARD)

    assert reader.take(1)[0].meter == "041776199277"
    reader.stop()


def test_tic_gateway_with_a_fixed_baud_rate_does_not_switch(meter: Meter) -> None:
    gateway = TicGateway(meter.port, baudrate=9600, switch_after=0.1)
    reader = Reader(gateway)

    time.sleep(0.5)
    assert gateway.baudrate == 9600
    reader.stop()


def test_dsmr_gateway_reads_a_p1_stream(meter: Meter) -> None:
    telegrams = [(FIXTURES / "dsmr" / f"{name}.txt").read_bytes() for name in ("v5", "v4_2", "fluvius_v171")]
    reader = Reader(DsmrGateway(meter.port))
    meter.send(telegrams[1][500:] + b"".join(telegrams))

    samples = reader.take(3)
    reader.stop()

    assert [(s.import_wh, s.export_wh) for s in samples] == [(6825, 2444), (3016829, 0), (15792, 11)]
    assert samples[0].meter == "4B384547303034303436333935353037"
    assert all(s.rejected == () for s in samples)


def test_dsmr_gateway_reads_a_dsmr2_meter_at_9600_7e1(meter: Meter) -> None:
    reader = Reader(DsmrGateway(meter.port, baudrate=9600))
    meter.send((FIXTURES / "dsmr" / "v2_2.txt").read_bytes())

    assert [(s.import_wh, s.export_wh) for s in reader.take(1)] == [(2002, 2002)]
    reader.stop()


@pytest.mark.parametrize("gateway", [TicGateway, DsmrGateway])
def test_a_port_that_cannot_be_opened_is_one_error_line(tmp_path: Path, gateway: Callable[[str], Gateway]) -> None:
    with pytest.raises(DaiseeError, match=r"cannot open serial port .*/ttyNOPE") as raised:
        gateway(str(tmp_path / "ttyNOPE"))
    assert "\n" not in str(raised.value)
