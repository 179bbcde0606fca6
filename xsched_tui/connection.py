"""Where the console connects: `--socket PATH` / `--connect HOST:PORT`, like xschedctl.

Precedence: --connect, --socket, $XSCHED_SERVER, $XSCHED_SOCKET, then the daemon's default
socket (hal.paths). A daemon started with --allow-remote wants its token
($XSCHED_TOKEN or $XSCHEDD_TOKEN) on TCP connections.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hal.paths import daemon_socket
from preempt import config as env_names

DAEMON_TOKEN_ENV = "XSCHEDD_TOKEN"  # the name xschedd itself reads

# Short reconnect backoff inside gRPC too: the console wants to see the daemon come back
# within a second, not after gRPC's default two-minute ceiling.
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
)


class TargetError(ValueError):
    """A bad --connect / --socket / environment value; the message names it."""


@dataclass(frozen=True)
class Target:
    """A gRPC target (`unix:/path` or `host:port`) and the token to present, if any."""

    address: str
    token: str | None = None

    @property
    def metadata(self) -> tuple[tuple[str, str], ...] | None:
        return (("authorization", f"Bearer {self.token}"),) if self.token else None

    @property
    def label(self) -> str:
        return self.address.removeprefix("unix:")


def parse_host_port(text: str, what: str) -> str:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise TargetError(f"{what} {text!r}: expected HOST:PORT")
    return f"{host}:{port}"


def resolve_target(
    socket: Path | str | None = None,
    connect: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Target:
    env = os.environ if env is None else env
    token = env.get(env_names.TOKEN) or env.get(DAEMON_TOKEN_ENV) or None
    if connect:
        return Target(parse_host_port(connect, "--connect"), token)
    if socket:
        return Target(f"unix:{Path(socket).absolute()}")
    server = env.get(env_names.SERVER, "").strip()
    if server:
        return Target(parse_host_port(server, env_names.SERVER), token)
    sock = env.get(env_names.SOCKET, "").strip()
    return Target(f"unix:{Path(sock).absolute() if sock else daemon_socket()}")
