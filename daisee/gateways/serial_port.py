"""A serial port read chunk by chunk, shared by the TIC and DSMR gateways; failures are one-line errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import serial  # type: ignore[import-untyped]

from daisee.errors import DaiseeError

READ_TIMEOUT = 0.2  # seconds: how often a silent port yields an empty chunk, so callers can time out


class SerialStream:
    """An open serial port, 7E1 (`seven_even`, TIC and DSMR 2.2/3) or 8N1 (DSMR 4/5)."""

    def __init__(self, port: str, baudrate: int, *, seven_even: bool) -> None:
        self.port = port
        self._lock = threading.Lock()
        self._closed = False
        self._reading = False
        try:
            self._serial = serial.Serial(
                port,
                baudrate=baudrate,
                bytesize=serial.SEVENBITS if seven_even else serial.EIGHTBITS,
                parity=serial.PARITY_EVEN if seven_even else serial.PARITY_NONE,
                stopbits=serial.STOPBITS_ONE,
                timeout=READ_TIMEOUT,
            )
        except (serial.SerialException, ValueError) as exc:
            raise DaiseeError(
                f"cannot open serial port {port} ({exc}): check the device path and that you may read it "
                "(e.g. membership of the dialout group)"
            ) from exc

    @property
    def baudrate(self) -> int:
        return int(self._serial.baudrate)

    @baudrate.setter
    def baudrate(self, value: int) -> None:
        self._serial.baudrate = value

    def chunks(self) -> Iterator[bytes]:
        """The bytes as they arrive, and an empty chunk after each READ_TIMEOUT of silence, until `close()`.

        The reading thread owns the port while it reads: `close()` from another thread only cancels the read,
        and the port is released here.
        """
        with self._lock:
            if self._closed:
                return
            self._reading = True
        try:
            while not self._closed:
                try:
                    chunk: bytes = self._serial.read(max(1, self._serial.in_waiting))
                except (serial.SerialException, OSError) as exc:
                    raise DaiseeError(
                        f"serial port {self.port} failed ({exc}): check that the adapter is still plugged in"
                    ) from exc
                yield chunk
        finally:
            with self._lock:
                self._closed, self._reading = True, False
                self._serial.close()

    def close(self) -> None:
        """Stop `chunks()` (from any thread) and release the port."""
        with self._lock:
            self._closed = True
            if self._reading:
                self._serial.cancel_read()
            else:
                self._serial.close()
