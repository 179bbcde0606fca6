"""xsched-simxpu: one simulated XPU that hardware queues of many processes share.

Clients start it on demand (see hal.sim.client); it exits after it has had no client
for --idle-exit-s seconds. Each client connection owns the queues it created; they are
removed when it disconnects.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path

from hal.clock import RealClock
from hal.errors import DeviceError
from hal.sim.engine import SimEngine
from hal.sim.protocol import Op, default_socket, pack, recv_frame

log = logging.getLogger("xsched-simxpu")


class _Connection:
    """One client; its reader thread applies frames to the engine."""

    def __init__(self, server: SimDeviceServer, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.send_lock = threading.Lock()
        self.queues: set[int] = set()

    def send(self, data: bytes) -> None:
        with self.send_lock:
            try:
                self.sock.sendall(data)
            except OSError:
                pass  # the reader notices the closed connection and cleans up

    def serve(self) -> None:
        engine = self.server.engine
        handlers = {
            Op.REMOVE_QUEUE: engine.remove_queue,
            Op.DEACTIVATE: engine.deactivate,
            Op.REACTIVATE: engine.reactivate,
            Op.INTERRUPT: engine.interrupt,
            Op.RESTORE: engine.restore,
        }
        try:
            while (frame := recv_frame(self.sock)) is not None:
                op, qid, token, value = frame
                if op == Op.ADD_QUEUE:
                    sender = _DoneSender(self)
                    new = sender.qid = engine.add_queue(sender)
                    self.queues.add(new)
                    self.send(pack(Op.QUEUE_ADDED, new, token))
                elif qid not in self.queues:
                    raise DeviceError(f"frame op={op} for queue {qid} this client does not own")
                elif op == Op.LAUNCH:
                    engine.launch(qid, token, value)
                elif op in handlers:
                    handlers[Op(op)](qid)
                    if op == Op.REMOVE_QUEUE:
                        self.queues.discard(qid)
                else:
                    raise DeviceError(f"unknown frame op {op}")
        except (OSError, DeviceError, ValueError) as exc:
            log.warning("dropping client: %s", exc)
        finally:
            for qid in list(self.queues):
                engine.remove_queue(qid)
            with contextlib.suppress(OSError):
                self.sock.close()
            self.server.forget(self)


class _DoneSender:
    """Tells the client that one of its queue's commands completed."""

    def __init__(self, conn: _Connection) -> None:
        self.conn = conn
        self.qid = 0  # set right after the engine names the queue, before any launch

    def __call__(self, token: int) -> None:
        self.conn.send(pack(Op.DONE, self.qid, token))


class SimDeviceServer:
    """Listens on a Unix socket and serves one SimEngine in real time."""

    def __init__(self, socket_path: Path, engine: SimEngine) -> None:
        self.socket_path = socket_path
        self.engine = engine
        self._lock = threading.Lock()
        self._connections: set[_Connection] = set()
        self.last_activity = time.monotonic()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def bind(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        self._listener.bind(str(self.socket_path))
        os.chmod(self.socket_path, 0o600)
        self._listener.listen(128)

    def serve_forever(self, idle_exit_s: float) -> None:
        threading.Thread(target=self._accept_loop, daemon=True, name="accept").start()
        try:
            while True:
                time.sleep(0.2)
                with self._lock:
                    idle = not self._connections
                if idle_exit_s > 0 and idle and time.monotonic() - self.last_activity > idle_exit_s:
                    log.info("no client for %.0f s, exiting", idle_exit_s)
                    return
        finally:
            with contextlib.suppress(OSError):
                self.socket_path.unlink()

    def forget(self, conn: _Connection) -> None:
        with self._lock:
            self._connections.discard(conn)
            self.last_activity = time.monotonic()

    def _accept_loop(self) -> None:
        while True:
            sock, _ = self._listener.accept()
            conn = _Connection(self, sock)
            with self._lock:
                self._connections.add(conn)
                self.last_activity = time.monotonic()
            threading.Thread(target=conn.serve, daemon=True, name="client").start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="xsched-simxpu", description="A simulated XPU shared by many processes."
    )
    parser.add_argument("--socket", type=Path, default=None, help="Unix socket path")
    parser.add_argument("--speed", type=float, default=1.0, help="speed factor (2 = twice as fast)")
    parser.add_argument("--scheduling", choices=SimEngine.SCHEDULING, default="fcfs")
    parser.add_argument("--timeslice-us", type=float, default=2000.0)
    parser.add_argument(
        "--idle-exit-s", type=float, default=60.0, help="exit after this long with no client (0: never)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s xsched-simxpu %(message)s")
    try:
        engine = SimEngine(
            RealClock("simxpu"),
            speed=args.speed,
            scheduling=args.scheduling,
            timeslice_us=args.timeslice_us,
        )
    except DeviceError as exc:
        parser.error(str(exc))
    server = SimDeviceServer(args.socket or default_socket(), engine)
    try:
        server.bind()
    except OSError as exc:
        print(f"xsched-simxpu: cannot listen on {server.socket_path}: {exc}", file=sys.stderr)
        return 1
    log.info("serving on %s (speed %.3g, %s)", server.socket_path, args.speed, args.scheduling)
    server.serve_forever(args.idle_exit_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
