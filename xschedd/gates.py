"""Suspend gates: a page of shared memory per local agent, written by xschedd.

An operation through the agent stream takes effect when the target's agent thread wakes
up, reads it and applies it: on a VM that wake-up, and the cold Python after it, is most
of the time from a decision to its effect. So the daemon also writes each decision into
the target's gate page before it sends the operations: one byte per XQueue, 1 while the
daemon wants it suspended. The XQueue's launcher reads its byte before every launch
(`XQueue.set_gate`), so from the moment the daemon writes it the queue launches nothing
more: a level-1 suspend is applied then. The operation still follows on the stream and
does the rest (level-2 deactivation, the queue's state and its events); a resume always
comes as an operation (a resumed queue has to be pumped by its own process).

Layout: SLOTS flag bytes, slot n for the XQueue `pid << 32 | n` (n < SLOTS; an XQueue
beyond that has no gate), then SLOTS float64 stamps: `time.monotonic()` of the write
that last set the flag (what the control-plane benchmark reads as "applied").

Files live in /dev/shm (else the temp dir) as `xsched-gates-<daemon pid>-<agent pid>-
<random>`, created 0600 by the daemon and given to the agent's uid when they differ (a
root daemon); the agent maps them read-only. A process can only ever stall its own
queues through its page. The daemon removes a page when its stream ends and, at start,
the pages of daemons that are gone. The agent drops its gates when its stream ends, for
whatever reason, and its queues run on.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import secrets
import struct
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from hal.shm import pid_alive

SLOTS = 4096
SIZE = SLOTS + 8 * SLOTS
PREFIX = "xsched-gates-"
_STAMP = struct.Struct("<d")
_NAME = re.compile(rf"{PREFIX}(\d+)-(\d+)-[0-9a-f]+")


def gate_dir() -> Path:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() else Path(tempfile.gettempdir())


def slot_of(xqueue_id: int) -> int | None:
    """The XQueue's byte in its process's page, or None (beyond the page)."""
    n = xqueue_id & 0xFFFFFFFF
    return n if 0 < n < SLOTS else None


class GatePage:
    """One agent's page: `create` on the daemon's side (read-write), `open` on the
    agent's (read-only)."""

    def __init__(self, path: Path, mm: mmap.mmap, writable: bool) -> None:
        self.path = path
        self._mm = mm
        self.writable = writable
        self.flags = memoryview(mm)[:SLOTS]  # the XQueue's launcher reads flags[slot]

    @classmethod
    def create(cls, agent_pid: int, owner_uid: int | None, directory: Path | None = None) -> GatePage:
        """A zeroed page for the agent of `agent_pid`, readable by `owner_uid`; raises OSError."""
        directory = directory or gate_dir()
        path = directory / f"{PREFIX}{os.getpid()}-{agent_pid}-{secrets.token_hex(4)}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            if owner_uid is not None and owner_uid != os.geteuid():
                os.fchown(fd, owner_uid, -1)  # a root daemon: the agent's user may read it
            os.ftruncate(fd, SIZE)
            mm = mmap.mmap(fd, SIZE)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        os.close(fd)
        return cls(path, mm, writable=True)

    @classmethod
    def open(cls, path: str) -> GatePage:
        """The agent's view of the page the daemon named; raises OSError or ValueError."""
        p = Path(path)
        if p.parent != gate_dir() or not _NAME.fullmatch(p.name):
            raise ValueError(f"not a gate page: {path!r}")
        fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            if os.fstat(fd).st_size < SIZE:
                raise ValueError(f"gate page {path!r} is too small")
            mm = mmap.mmap(fd, SIZE, prot=mmap.PROT_READ)
        finally:
            os.close(fd)
        return cls(p, mm, writable=False)

    def apply(self, changes: Iterable[tuple[int, bool]]) -> None:
        """Daemon: (xqueue_id, suspend) pairs, as dispatched; XQueues beyond the page skipped."""
        now = _STAMP.pack(time.monotonic())
        mm = self._mm
        for xqueue_id, suspend in changes:
            n = slot_of(xqueue_id)
            if n is not None:
                if suspend:
                    mm[SLOTS + 8 * n : SLOTS + 8 * n + 8] = now
                mm[n] = suspend

    def stamp(self, xqueue_id: int) -> float | None:
        """When the daemon last gated this XQueue (monotonic seconds), if ever."""
        n = slot_of(xqueue_id)
        if n is None:
            return None
        (t,) = _STAMP.unpack_from(self._mm, SLOTS + 8 * n)
        return t or None

    def close(self) -> None:
        """Daemon: ungate everything (whoever still maps the page), unmap, remove the file.
        The agent's read-only view is not closed: XQueues may still hold `flags` (they
        drop it first), and the garbage collector unmaps it once none does."""
        if not self.writable:
            return
        self._mm[:SLOTS] = bytes(SLOTS)
        self.flags.release()
        self._mm.close()
        self.path.unlink(missing_ok=True)


def remove_stale(directory: Path | None = None) -> int:
    """Remove the pages of daemons that are no longer running; returns how many."""
    directory = directory or gate_dir()
    removed = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            m = _NAME.fullmatch(entry.name)
            if m is None or pid_alive(int(m.group(1))):
                continue
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed += 1
    return removed
