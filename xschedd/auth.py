"""Who is calling, and what they may do.

gRPC Python does not expose a Unix socket's peer credentials (SO_PEERCRED) to servicers
(grpc/grpc#15511: the auth context of a UDS call is empty). So the daemon owns the public
socket itself: `PeerCredProxy` accepts each connection, reads SO_PEERCRED from the
accepted socket, and relays the bytes to the gRPC server's private socket (in a 0700
directory) over a connection bound to a fresh abstract address. gRPC reports that
address as the call's peer (`unix-abstract:<name>`), and `PeerTable` maps it back to the
uid/gid/pid the kernel gave. Loopback TCP peers are identified through /proc/net/tcp
(the uid that owns the client's socket); other TCP peers need --allow-remote and the token.

Rules: anyone who can connect may read (list, watch, get policy). A user may hint,
configure, suspend and resume only the XQueues of its own processes. Root, the daemon's
own user and members of the admin group may change the policy, give global hints, and
touch every XQueue. Token holders count as admins.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import hmac
import ipaddress
import itertools
import logging
import os
import pwd
import secrets
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from xschedd.errors import PermissionDenied

log = logging.getLogger(__name__)

_UCRED = struct.Struct("3i")  # pid, uid, gid
TOKEN_METADATA = "authorization"


@dataclass(frozen=True)
class Credentials:
    pid: int
    uid: int
    gid: int


@dataclass(frozen=True)
class Peer:
    """An authenticated caller. `uid` is None only for token-holding remote peers."""

    transport: str  # "unix" | "tcp"
    address: str
    uid: int | None
    gid: int | None = None
    pid: int | None = None
    admin: bool = False

    def describe(self) -> str:
        who = "token holder" if self.uid is None else f"uid {self.uid}"
        pid = f" pid {self.pid}" if self.pid else ""
        return f"{who}{pid} via {self.transport} {self.address}"


def peer_credentials(sock: socket.socket) -> Credentials:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    return Credentials(*_UCRED.unpack(raw))


class PeerTable:
    """gRPC peer string of a relayed connection -> the credentials of its real client."""

    def __init__(self) -> None:
        self._peers: dict[str, Credentials] = {}

    def add(self, grpc_peer: str, creds: Credentials) -> None:
        self._peers[grpc_peer] = creds

    def remove(self, grpc_peer: str) -> None:
        self._peers.pop(grpc_peer, None)

    def get(self, grpc_peer: str) -> Credentials | None:
        return self._peers.get(grpc_peer)

    def __len__(self) -> int:
        return len(self._peers)


# -- the relay -------------------------------------------------------------------------------
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
    def __init__(self, proxy: PeerCredProxy) -> None:
        super().__init__()
        self.proxy = proxy
        self.grpc_peer = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        transport.pause_reading()  # type: ignore[attr-defined]
        self.proxy._accepted(self)

    def close(self) -> None:
        if not self.closed:
            self.proxy._closed(self)
        super().close()


class PeerCredProxy:
    """Serves the public Unix socket, relaying each connection to gRPC's private socket.

    Runs on the daemon's event loop. At most `max_connections` at once; more are closed.
    """

    def __init__(
        self, public: Path, upstream: Path, peers: PeerTable, *, max_connections: int = 1024
    ) -> None:
        self.public = public
        self.upstream = upstream
        self.peers = peers
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
        asyncio.get_running_loop().create_task(self._relay(client))

    def _closed(self, client: _Client) -> None:
        self._clients.discard(client)
        if client.grpc_peer:
            self.peers.remove(client.grpc_peer)

    async def _relay(self, client: _Client) -> None:
        loop = asyncio.get_running_loop()
        assert client.transport is not None
        try:
            creds = peer_credentials(client.transport.get_extra_info("socket"))
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
            self.peers.add(client.grpc_peer, creds)
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


# -- identification and rules -------------------------------------------------------------
def _proc_net_uid(client_ip: str, client_port: int, server_port: int) -> int | None:
    """The uid owning the local TCP socket (client_ip, client_port) -> server_port."""
    ip = ipaddress.ip_address(client_ip)
    table = "/proc/net/tcp6" if ip.version == 6 else "/proc/net/tcp"
    candidates = [table]
    if ip.version == 4:
        candidates.append("/proc/net/tcp6")  # v4-mapped on a dual-stack socket
    for path in candidates:
        with contextlib.suppress(OSError):
            for line in Path(path).read_text().splitlines()[1:]:
                parts = line.split()
                local, remote, uid = parts[1], parts[2], parts[7]
                lip, lport = _parse_hex_addr(local)
                _, rport = _parse_hex_addr(remote)
                if lport == client_port and rport == server_port and _same_ip(lip, ip):
                    return int(uid)
    return None


def _parse_hex_addr(text: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    addr, port = text.split(":")
    raw = bytes.fromhex(addr)
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw[::-1]), int(port, 16)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return ipaddress.IPv6Address(words), int(port, 16)


def _same_ip(a: ipaddress.IPv4Address | ipaddress.IPv6Address, b) -> bool:
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        a = a.ipv4_mapped
    if isinstance(b, ipaddress.IPv6Address) and b.ipv4_mapped is not None:
        b = b.ipv4_mapped
    return a == b


def parse_tcp_peer(peer: str) -> tuple[str, int] | None:
    """'ipv4:1.2.3.4:5' / 'ipv6:[::1]:5' -> (ip, port)."""
    kind, _, rest = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return None
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")
    with contextlib.suppress(ValueError):
        return host, int(port)
    return None


class Authorizer:
    """Identifies callers from their gRPC peer and applies the rules of the module docstring."""

    def __init__(
        self,
        peers: PeerTable,
        *,
        admin_group: int | None = None,
        token: str | None = None,
        allow_remote: bool = False,
        tcp_port: int | None = None,
    ) -> None:
        self.peers = peers
        self.admin_group = admin_group
        self.token = token
        self.allow_remote = allow_remote
        self.tcp_port = tcp_port
        self.owner_uid = os.geteuid()
        self._admin_cache: dict[tuple[int, int], bool] = {}

    def identify(self, grpc_peer: str, metadata: tuple = ()) -> Peer:
        if grpc_peer.startswith("unix"):
            creds = self.peers.get(grpc_peer)
            if creds is None:
                raise PermissionDenied(f"unknown local peer {grpc_peer!r}: connect through the public socket")
            return Peer("unix", grpc_peer, creds.uid, creds.gid, creds.pid, self._is_admin(creds.uid, creds.gid))
        tcp = parse_tcp_peer(grpc_peer)
        if tcp is None:
            raise PermissionDenied(f"unsupported peer {grpc_peer!r}")
        ip, port = tcp
        token_ok = self._token_ok(metadata)
        loopback = ipaddress.ip_address(ip).is_loopback or _is_mapped_loopback(ip)
        if not loopback:
            if not self.allow_remote:
                raise PermissionDenied(f"remote peer {ip} refused: start xschedd with --allow-remote")
            if not token_ok:
                raise PermissionDenied(f"remote peer {ip} refused: missing or wrong token")
            return Peer("tcp", grpc_peer, None, admin=True)
        if token_ok:
            return Peer("tcp", grpc_peer, None, admin=True)
        uid = _proc_net_uid(ip, port, self.tcp_port) if self.tcp_port else None
        if uid is None:
            raise PermissionDenied(f"cannot tell which user owns loopback peer {grpc_peer}")
        return Peer("tcp", grpc_peer, uid, None, None, self._is_admin(uid, None))

    def require_admin(self, peer: Peer, action: str) -> None:
        if not peer.admin:
            raise PermissionDenied(f"{action} needs root or the admin group ({peer.describe()})")

    def require_owner(self, peer: Peer, owner_uid: int | None, action: str) -> None:
        if peer.admin:
            return
        if owner_uid is None or peer.uid != owner_uid:
            raise PermissionDenied(
                f"{action}: the XQueue belongs to uid {owner_uid}, not to {peer.describe()}"
            )

    def _token_ok(self, metadata: tuple) -> bool:
        if not self.token:
            return False
        for key, value in metadata or ():
            if key == TOKEN_METADATA and isinstance(value, str):
                given = value.removeprefix("Bearer ").strip()
                return hmac.compare_digest(given.encode(), self.token.encode())
        return False

    def _is_admin(self, uid: int, gid: int | None) -> bool:
        if uid == 0 or uid == self.owner_uid:
            return True
        if self.admin_group is None:
            return False
        key = (uid, -1 if gid is None else gid)
        if key not in self._admin_cache:
            self._admin_cache[key] = self._in_group(uid, gid, self.admin_group)
        return self._admin_cache[key]

    @staticmethod
    def _in_group(uid: int, gid: int | None, group: int) -> bool:
        if gid == group:
            return True
        try:
            user = pwd.getpwuid(uid)
        except KeyError:
            return False
        return group in os.getgrouplist(user.pw_name, user.pw_gid)


def _is_mapped_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    return isinstance(addr, ipaddress.IPv6Address) and bool(addr.ipv4_mapped and addr.ipv4_mapped.is_loopback)


def group_id(name_or_id: str) -> int:
    """A group by name or number (for --admin-group / --socket-group)."""
    if name_or_id.isdigit():
        return int(name_or_id)
    return grp.getgrnam(name_or_id).gr_gid
