"""Who is calling, and what they may do.

Local callers are known by the kernel's SO_PEERCRED of their connection to the public
socket (xschedd/relay.py reads it on accept): native agent streams carry their
credentials with them; relayed gRPC calls are found through `PeerTable`, which maps the
call's peer address back to them. Loopback TCP peers are identified through
/proc/net/tcp (the uid that owns the client's socket); other TCP peers need
--allow-remote and the token.

Rules: anyone who can connect may read (list, watch, get policy). A user may hint,
configure, suspend and resume only the XQueues of its own processes. Root, the daemon's
own user and members of the admin group may change the policy, give global hints, and
touch every XQueue. Token holders count as admins.
"""

from __future__ import annotations

import contextlib
import grp
import hmac
import ipaddress
import logging
import os
import pwd
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

    def local_peer(self, creds: Credentials, address: str = "native stream") -> Peer:
        """A caller on the public Unix socket, as the kernel reported it."""
        return Peer("unix", address, creds.uid, creds.gid, creds.pid, self._is_admin(creds.uid, creds.gid))

    def identify(self, grpc_peer: str, metadata: tuple = ()) -> Peer:
        if grpc_peer.startswith("unix"):
            creds = self.peers.get(grpc_peer)
            if creds is None:
                raise PermissionDenied(f"unknown local peer {grpc_peer!r}: connect through the public socket")
            return self.local_peer(creds, grpc_peer)
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
