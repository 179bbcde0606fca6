"""Local agents' native streams (xschedd/framing.py), served on the daemon's event loop.

The public socket's relay hands over a connection that opened with MAGIC, together with
the kernel's credentials of its peer; from there `AgentConnection` reads frames and
gives each read's messages to the daemon at once (one scheduling decision for all of
them), and the session writes operations straight into the transport. Reads are at most
READ_BYTES, so that one busy agent cannot hold the loop for long (pings to the others,
whose lease depends on them, come between reads).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import grpc

from protos.xsched.v1 import agent_pb2 as apb
from xschedd.agents import SocketSession
from xschedd.auth import Credentials
from xschedd.daemon import Daemon
from xschedd.framing import FrameError, FrameReader, FrameTooLarge

log = logging.getLogger(__name__)

READ_BYTES = 64 * 1024


class AgentConnection(asyncio.BufferedProtocol):
    def __init__(self, daemon: Daemon, creds: Credentials, release: Callable[[], None], max_bytes: int) -> None:
        self.daemon = daemon
        self.peer = daemon.auth.local_peer(creds)
        self.release = release
        self.reader = FrameReader(apb.AgentMessage.FromString, max_bytes)
        self.session: SocketSession | None = None
        self._buffer = memoryview(bytearray(READ_BYTES))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.session = SocketSession(self.peer, transport)  # type: ignore[arg-type]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self._buffer[:nbytes]))

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is None or session.closed:
            return
        try:
            msgs = self.reader.feed(data)
        except FrameError as exc:
            code = grpc.StatusCode.RESOURCE_EXHAUSTED if isinstance(exc, FrameTooLarge) else grpc.StatusCode.INVALID_ARGUMENT
            log.warning("agent %s: %s", self.peer.describe(), exc)
            session.close(code, str(exc))
            return
        if msgs:
            self.daemon.agent_messages(session, msgs)

    def eof_received(self) -> bool:
        return False  # the agent is done: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self.session is not None:
            self.daemon.agent_ended(self.session)
        self.release()
