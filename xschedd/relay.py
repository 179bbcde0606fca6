"""The daemon's public Unix socket: every connection's peer credentials, then one of two ways in.

`PeerCredProxy` accepts each connection and reads SO_PEERCRED from the accepted socket
(the kernel's word on the client's pid, uid and gid). Then it looks at the first bytes:

- a local agent's native stream (xschedd/framing.py MAGIC) is handed, with those
  credentials, to the daemon's handler on this same event loop: no relay, no gRPC;
- anything else is gRPC (xschedctl, the console, health checks, and agents that speak
  gRPC): its bytes are relayed to the gRPC server's private socket (in a 0700 directory)
  over a connection bound to a fresh abstract address. gRPC reports that address as the
  call's peer (`unix-abstract:<name>`), and `PeerTable` maps it back to the credentials
  (gRPC Python does not give servicers a Unix socket's peer credentials: grpc/grpc#15511).

Runs on the daemon's event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets
import socket
from collections.abc import Callable
from pathlib import Path

from xschedd.auth import Credentials, PeerTable, peer_credentials
from xschedd.framing import MAGIC

log = logging.getLogger(__name__)

# (credentials, release) -> the protocol that serves a native agent stream; it calls
# `release()` when its connection is lost.
NativeHandler = Callable[[Credentials, Callable[[], None]], asyncio.Protocol]


class _Half(asyncio.Protocol):
    """One side of a relayed connection; writes what it reads into the other side."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.other: _Half | None = None
        self.early: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.other is not None and self.other.transport is not None:
            self.other.transport.write(data)
        else:
            self.early.append(data)

    def eof_received(self) -> bool:
        self.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    def pause_writing(self) -> None:  # the other side reads faster than we can write
        if self.other is not None and self.other.transport is not None:
            self.other.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.other is not None and self.other.transport is not None:
            self.other.transport.resume_reading()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        if self.other is not None:
            self.other.close()


class _Client(_Half):
    """A connection to the public socket: sniffs its first bytes, then relays or hands over."""

    def __init__(self, proxy: PeerCredProxy) -> None:
        super().__init__()
        self.proxy = proxy
        self.grpc_peer = ""
        self.creds: Credentials | None = None
        self._sniffing = True
        self._native = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        try:
            self.creds = peer_credentials(transport.get_extra_info("socket"))
        except OSError as exc:
            log.warning("cannot read a connection's peer credentials: %s", exc)
            self.close()
            return
        self.proxy._accepted(self)

    def data_received(self, data: bytes) -> None:
        if not self._sniffing:
            super().data_received(data)
            return
        self.early.append(data)
        head = b"".join(self.early)
        if head.startswith(MAGIC) and self.proxy.native is not None:
            self._sniffing = False
            self._hand_over(head[len(MAGIC) :])
        elif not MAGIC.startswith(head) or self.proxy.native is None:
            self._sniffing = False
            self.early = [head]
            assert self.transport is not None
            self.transport.pause_reading()  # until the upstream connection is up
            asyncio.get_running_loop().create_task(self.proxy._relay(self))
        # else: a prefix of MAGIC so far; wait for more

    def _hand_over(self, rest: bytes) -> None:
        assert self.transport is not None and self.creds is not None and self.proxy.native is not None
        self._native = True
        self.early.clear()
        protocol = self.proxy.native(self.creds, lambda: self.proxy._closed(self))
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        if rest:
            protocol.data_received(rest)

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    def close(self) -> None:
        if self._native:  # the native protocol owns the transport now
            if self.transport is not None:
                self.transport.close()
            return
        if not self.closed:
            self.proxy._closed(self)
        super().close()


class PeerCredProxy:
    """Serves the public Unix socket (see the module docstring).

    Runs on the daemon's event loop. At most `max_connections` at once (native and
    relayed together); more are closed.
    """

    def __init__(
        self,
        public: Path,
        upstream: Path,
        peers: PeerTable,
        *,
        native: NativeHandler | None = None,
        max_connections: int = 1024,
    ) -> None:
        self.public = public
        self.upstream = upstream
        self.peers = peers
        self.native = native
        self.max_connections = max_connections
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[_Client] = set()
        self._names = itertools.count(1)
        self._tag = f"xschedd-{os.getpid()}-{secrets.token_hex(4)}"

    async def start(self, mode: int = 0o660, group: int | None = None) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # no window in which the socket is open to others
        try:
            sock.bind(str(self.public))
        finally:
            os.umask(old)
        if group is not None:
            os.chown(self.public, -1, group)
        os.chmod(self.public, mode)
        sock.listen(512)
        sock.setblocking(False)
        self._server = await loop.create_unix_server(lambda: _Client(self), sock=sock)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for client in list(self._clients):
                client.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def connections(self) -> int:
        return len(self._clients)

    def _accepted(self, client: _Client) -> None:
        if len(self._clients) >= self.max_connections:
            log.warning("refusing a connection: %d connections already open", len(self._clients))
            client.close()
            return
        self._clients.add(client)

    def _closed(self, client: _Client) -> None:
        self._clients.discard(client)
        if client.grpc_peer:
            self.peers.remove(client.grpc_peer)

    async def _relay(self, client: _Client) -> None:
        loop = asyncio.get_running_loop()
        assert client.transport is not None and client.creds is not None
        try:
            name = f"{self._tag}-{next(self._names)}"
            up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                up.bind("\0" + name)
                up.setblocking(False)
                await loop.sock_connect(up, str(self.upstream))
            except BaseException:
                up.close()
                raise
            if client.closed:
                up.close()
                return
            client.grpc_peer = f"unix-abstract:{name}"
            self.peers.add(client.grpc_peer, client.creds)
            upstream = _Half()
            await loop.create_unix_connection(lambda: upstream, sock=up)
        except (OSError, asyncio.CancelledError) as exc:
            log.warning("cannot relay a connection to %s: %s", self.upstream, exc)
            client.close()
            return
        client.other, upstream.other = upstream, client
        if client.closed:
            upstream.close()
            return
        for chunk in client.early:
            upstream.transport.write(chunk)  # type: ignore[union-attr]
        client.early.clear()
        client.transport.resume_reading()  # type: ignore[union-attr]
