"""The agent stream on the daemon's Unix socket: AgentService's messages without gRPC.

A local agent connects to the daemon's public socket and sends MAGIC; after it, each
side sends length-prefixed messages (4 bytes, big-endian, then a serialized
AgentMessage or DaemonMessage), the same messages as `AgentService.Connect` carries
over gRPC (which TCP agents use). The daemon ends a stream it refuses with a
DaemonMessage `error` (a gRPC status code and details) before closing it.

Pure bytes in, messages out: no I/O here, so both ends (the agent in `preempt`, the
daemon) share it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Generic, TypeVar

from google.protobuf.message import DecodeError, Message

# What a local agent sends first; it cannot be mistaken for gRPC's (HTTP/2's) preface,
# which starts "PRI * HTTP/2.0".
MAGIC = b"XSCHED-AGENT/1\n"
_HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024

M = TypeVar("M", bound=Message)


class FrameError(ValueError):
    """The peer sent bytes that are not a stream of our messages."""


class FrameTooLarge(FrameError):
    pass


class MalformedFrame(FrameError):
    pass


def frame(msg: Message) -> bytes:
    """`msg` as it travels: its length, then its bytes."""
    return frame_bytes(msg.SerializeToString())


def frame_bytes(data: bytes) -> bytes:
    """An already serialized message as it travels."""
    return _HEADER.pack(len(data)) + data


class FrameReader(Generic[M]):
    """Splits a byte stream into messages; `feed` returns those completed so far.

    A frame longer than `max_bytes` raises FrameTooLarge as soon as its header is seen
    (nothing that big is buffered); bytes that do not parse raise MalformedFrame.
    """

    def __init__(self, parse: Callable[[bytes], M], max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self._parse = parse
        self.max_bytes = max_bytes
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[M]:
        buf = self._buf
        buf += data
        out: list[M] = []
        pos = 0
        while len(buf) - pos >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buf, pos)
            if size > self.max_bytes:
                raise FrameTooLarge(f"a message of {size} bytes is over the limit of {self.max_bytes}")
            end = pos + _HEADER.size + size
            if end > len(buf):
                break
            try:
                out.append(self._parse(bytes(buf[pos + _HEADER.size : end])))
            except (DecodeError, ValueError) as exc:
                raise MalformedFrame(f"a message of {size} bytes does not parse: {exc}") from None
            pos = end
        del buf[:pos]
        return out

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buf)
