"""A client of the shared simulated XPU, which it starts on demand.

The first process that opens `--device sim` and finds no device server starts one
(`python -m hal.sim.server`, in its own session, logging next to the socket); a file
lock makes sure racing processes start only one.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hal.errors import DeviceError
from hal.sim.protocol import Op, pack, recv_frame

START_TIMEOUT_S = 15.0


class RemoteDevice:
    """A DevicePort over the shared device's socket; completions arrive on a reader thread."""

    def __init__(self, sock: socket.socket, path: Path) -> None:
        self.path = path
        self._sock = sock
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._callbacks: dict[int, Callable[[int], None]] = {}
        self._requests: dict[int, list[int]] = {}
        self._request_ids = itertools.count(1)
        self._added = threading.Condition(self._lock)
        self._alive = True
        threading.Thread(target=self._read_loop, daemon=True, name="simxpu-client").start()

    def add_queue(self, on_complete: Callable[[int], None]) -> int:
        request = next(self._request_ids)
        with self._lock:
            self._requests[request] = []
        self._send(pack(Op.ADD_QUEUE, 0, request))
        with self._added:
            if not self._added.wait_for(lambda: self._requests[request] or not self._alive, 10):
                raise DeviceError(f"simulated device at {self.path} did not answer")
            if not self._alive:
                raise DeviceError(f"simulated device at {self.path} went away")
            qid = self._requests.pop(request)[0]
            self._callbacks[qid] = on_complete
            return qid

    def remove_queue(self, qid: int) -> None:
        with self._lock:
            self._callbacks.pop(qid, None)
        with contextlib.suppress(DeviceError):
            self._send(pack(Op.REMOVE_QUEUE, qid))

    def launch(self, qid: int, token: int, duration_us: float) -> None:
        if not duration_us >= 0:
            raise DeviceError(f"command duration must be >= 0 us, got {duration_us!r}")
        self._send(pack(Op.LAUNCH, qid, token, duration_us))

    def deactivate(self, qid: int) -> None:
        self._send(pack(Op.DEACTIVATE, qid))

    def reactivate(self, qid: int) -> None:
        self._send(pack(Op.REACTIVATE, qid))

    def interrupt(self, qid: int) -> None:
        self._send(pack(Op.INTERRUPT, qid))

    def restore(self, qid: int) -> None:
        self._send(pack(Op.RESTORE, qid))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()

    def _send(self, frame: bytes) -> None:
        with self._send_lock:
            try:
                self._sock.sendall(frame)
            except OSError as exc:
                raise DeviceError(f"simulated device at {self.path} is gone: {exc}") from exc

    def _read_loop(self) -> None:
        try:
            while (frame := recv_frame(self._sock)) is not None:
                op, qid, token, _ = frame
                if op == Op.DONE:
                    with self._lock:
                        callback = self._callbacks.get(qid)
                    if callback is not None:
                        callback(token)
                elif op == Op.QUEUE_ADDED:
                    with self._added:
                        self._requests[token].append(qid)
                        self._added.notify_all()
        except OSError:
            pass
        finally:
            with self._added:
                self._alive = False
                self._added.notify_all()


def _connect(path: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
        return sock
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None


def _spawn_server(path: Path, speed: float) -> None:
    project_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [project_root, env.get("PYTHONPATH")]))
    with open(path.with_suffix(".log"), "ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", "hal.sim.server", "--socket", str(path), "--speed", str(speed)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
        )


def stop_server(path: Path) -> int:
    """Kill the device server serving `path` (a test's or benchmark's private device);
    return how many processes were stopped."""
    import psutil  # only the tools that clean up need it

    stopped = 0
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if "hal.sim.server" in cmd and str(path) in cmd:
            proc.kill()
            stopped += 1
    return stopped


def connect_or_start(path: Path, speed: float = 1.0, start: bool = True) -> RemoteDevice:
    """Connect to the shared device at `path`, starting its server first if none runs."""
    sock = _connect(path)
    if sock is None and start:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            sock = _connect(path)
            if sock is None:
                _spawn_server(path, speed)
                deadline = time.monotonic() + START_TIMEOUT_S
                while sock is None and time.monotonic() < deadline:
                    time.sleep(0.02)
                    sock = _connect(path)
    if sock is None:
        hint = f"; see {path.with_suffix('.log')}" if start else " (and starting one was not allowed)"
        raise DeviceError(f"no simulated device at {path}{hint}")
    return RemoteDevice(sock, path)
