"""The shared simulated device's wire format: fixed 24-byte frames over a Unix socket."""

from __future__ import annotations

import enum
import os
import socket
import struct
from pathlib import Path

from hal.paths import runtime_dir

FRAME = struct.Struct("<BxxxIQd")  # op, qid, token, value


class Op(enum.IntEnum):
    # client -> device
    ADD_QUEUE = 1  # token = request id
    REMOVE_QUEUE = 2
    LAUNCH = 3  # token = command token, value = duration in us
    DEACTIVATE = 4
    REACTIVATE = 5
    INTERRUPT = 6
    RESTORE = 7
    # device -> client
    QUEUE_ADDED = 64  # qid = the new queue, token = request id
    DONE = 65  # token = command token


def pack(op: Op, qid: int = 0, token: int = 0, value: float = 0.0) -> bytes:
    return FRAME.pack(op, qid, token, value)


def recv_frame(sock: socket.socket) -> tuple[int, int, int, float] | None:
    """One frame, or None when the peer closed the connection."""
    buf = b""
    while len(buf) < FRAME.size:
        chunk = sock.recv(FRAME.size - len(buf))
        if not chunk:
            return None
        buf += chunk
    return FRAME.unpack(buf)


def default_socket() -> Path:
    """XSCHED_SIM_SOCKET if set, else simxpu.sock in the runtime dir."""
    env = os.environ.get("XSCHED_SIM_SOCKET")
    return Path(env) if env else runtime_dir() / "simxpu.sock"
