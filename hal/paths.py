"""Where xsched's per-user sockets live: one home for the runtime directory."""

from __future__ import annotations

import os
from pathlib import Path


def runtime_dir() -> Path:
    """$XDG_RUNTIME_DIR/xsched, else /tmp/xsched-<uid>: the per-user home of xsched sockets."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(base) / "xsched" if base else Path(f"/tmp/xsched-{os.getuid()}")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


DAEMON_SOCKET_NAME = "xschedd.sock"


def daemon_socket() -> Path:
    """xschedd's default socket: $XDG_RUNTIME_DIR/xsched/xschedd.sock, else /tmp/xsched-<uid>/xschedd.sock."""
    return runtime_dir() / DAEMON_SOCKET_NAME
