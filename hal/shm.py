"""Shared-memory helpers for pages that several processes map: futexes and liveness.

One home for what the priority board (hal/board.py) and xschedd's suspend gates
(xschedd/gates.py) both need: wait on a 32-bit word of a shared mapping until another
process changes it and wakes it (Linux futex, shared, not private; elsewhere a short
sleep), and whether a pid still runs.
"""

from __future__ import annotations

import ctypes
import os
import platform
import time

_FUTEX = {"x86_64": 202, "aarch64": 98}.get(platform.machine())
_FUTEX_WAIT, _FUTEX_WAKE = 0, 1  # shared futexes: the key is the mapped file's page
_libc = ctypes.CDLL(None, use_errno=True)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def futex_wait(address: int, expected: int, timeout_s: float) -> None:
    """Sleep while the uint32 at `address` is `expected`, at most `timeout_s`."""
    if _FUTEX is None:
        time.sleep(min(timeout_s, 0.001))
        return
    ts = _Timespec(int(timeout_s), int((timeout_s % 1) * 1e9))
    _libc.syscall(_FUTEX, ctypes.c_void_p(address), _FUTEX_WAIT, ctypes.c_uint32(expected), ctypes.byref(ts), None, 0)


def futex_wake(address: int) -> None:
    """Wake every process and thread waiting on the uint32 at `address`."""
    if _FUTEX is not None:
        _libc.syscall(_FUTEX, ctypes.c_void_p(address), _FUTEX_WAKE, 0x7FFFFFFF, None, None, 0)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
