"""Suspend gates: a page of shared memory per local agent, written by xschedd.

An operation through the agent stream takes effect when the target's agent thread wakes
up, reads it and applies it: on a VM that wake-up, and the cold Python after it, is most
of the time from a decision to its effect. So the daemon also writes each decision into
the target's gate page before it sends the operations: one byte per XQueue, 1 while the
daemon wants it suspended. The XQueue's launcher reads its byte before every launch
(`XQueue.set_gate`), so from the moment the daemon writes it the queue launches nothing
more: a level-1 suspend is applied then. The operation still follows on the stream and
does the rest: the queue's state and its events, a level-2 deactivation. A level-1
suspension is left to the gate (`XQueue.suspend(by_gate=True)`), so a resume is applied
when the daemon clears the byte: the queue's next completion launches again, and a queue
that the gate alone keeps from launching work it has room for (a *stalled* one: its
launcher marks its stall byte) is pumped by the agent's gate thread, which the daemon
wakes through the page's futex word when it clears a stalled queue's byte. The resume
operation that follows brings the state and the event, and pumps the queue itself if
the wake-up was missed (a stall marked while the daemon was clearing).

Layout: SLOTS flag bytes, slot n for the XQueue `pid << 32 | n` (n < SLOTS; an XQueue
beyond that has no gate), SLOTS stall bytes (the agent's), then SLOTS float64 stamps of
the writes that last set each flag and SLOTS of those that last cleared it
(`time.monotonic()`: what the control-plane benchmark reads as "applied"), then the
uint32 futex word and a uint32 the agent sets once its XQueues read their gates (until
then, and for an agent that never maps the page, the daemon sends every operation at
once).

Files live in /dev/shm (else the temp dir) as `xsched-gates-<daemon pid>-<agent pid>-
<random>`, created 0600 by the daemon and given to the agent's uid when they differ (a
root daemon). A process can only ever stall its own queues through its page, and the
daemon reads nothing from it but the stall bytes, which can only make it wake the
page's owner. The daemon removes a page when its stream ends and, at start, the pages
of daemons that are gone. The agent drops its gates when its stream ends, for whatever
reason, and its queues run on.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import re
import secrets
import struct
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from hal.shm import futex_wait, futex_wake, pid_alive

SLOTS = 4096
STALLED = SLOTS  # the agent's stall bytes
SET_AT = 2 * SLOTS  # float64 stamps
CLEARED_AT = SET_AT + 8 * SLOTS
WAKE = CLEARED_AT + 8 * SLOTS  # uint32 futex word
MAPPED = WAKE + 4  # uint32, the agent's: nonzero once its XQueues read their gates
SIZE = WAKE + 8
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
    """One agent's page: `create` on the daemon's side, `open` on the agent's."""

    def __init__(self, path: Path, mm: mmap.mmap, owner: bool) -> None:
        self.path = path
        self._mm = mm
        self.owner = owner  # the daemon's side: it ungates and removes the page on close
        self.flags = memoryview(mm)[:SLOTS]  # the XQueue's launcher reads flags[slot]
        self.stalled = memoryview(mm)[STALLED : STALLED + SLOTS]
        self._wake = ctypes.c_uint32.from_buffer(mm, WAKE)
        self._mapped = ctypes.c_uint32.from_buffer(mm, MAPPED)

    @classmethod
    def create(cls, agent_pid: int, owner_uid: int | None, directory: Path | None = None) -> GatePage:
        """A zeroed page for the agent of `agent_pid`, readable by `owner_uid`; raises OSError."""
        directory = directory or gate_dir()
        path = directory / f"{PREFIX}{os.getpid()}-{agent_pid}-{secrets.token_hex(4)}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            if owner_uid is not None and owner_uid != os.geteuid():
                os.fchown(fd, owner_uid, -1)  # a root daemon: the agent's user may map it
            os.ftruncate(fd, SIZE)
            mm = mmap.mmap(fd, SIZE)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        os.close(fd)
        return cls(path, mm, owner=True)

    @classmethod
    def open(cls, path: str) -> GatePage:
        """The agent's view of the page the daemon named; raises OSError or ValueError."""
        p = Path(path)
        if p.parent != gate_dir() or not _NAME.fullmatch(p.name):
            raise ValueError(f"not a gate page: {path!r}")
        fd = os.open(p, os.O_RDWR | os.O_NOFOLLOW)
        try:
            if os.fstat(fd).st_size < SIZE:
                raise ValueError(f"gate page {path!r} is too small")
            mm = mmap.mmap(fd, SIZE)
        finally:
            os.close(fd)
        return cls(p, mm, owner=False)

    def apply(self, changes: Iterable[tuple[int, bool]]) -> None:
        """Daemon: (xqueue_id, suspend) pairs, as dispatched; XQueues beyond the page
        skipped. Wakes the agent's gate thread if a queue it clears is stalled."""
        now = _STAMP.pack(time.monotonic())
        mm = self._mm
        wake = False
        for xqueue_id, suspend in changes:
            n = slot_of(xqueue_id)
            if n is None:
                continue
            at = (SET_AT if suspend else CLEARED_AT) + 8 * n
            mm[at : at + 8] = now
            mm[n] = suspend
            if not suspend and mm[STALLED + n]:
                wake = True
        if wake:
            self.wake()

    def wake(self) -> None:
        """Wake whoever sleeps on the page (`wait_for_wake`)."""
        self._wake.value += 1
        futex_wake(ctypes.addressof(self._wake))

    def mark_mapped(self) -> None:
        """Agent: its XQueues read their gates from now on."""
        self._mapped.value = 1

    @property
    def mapped(self) -> bool:
        """Daemon: whether the agent said its XQueues read their gates."""
        return self._mapped.value != 0

    def mark_stalled(self, slot: int) -> None:
        """Agent: the queue of `slot` has work that only its gate holds back."""
        self.stalled[slot] = 1

    def wait_for_wake(self, seen: int, timeout_s: float) -> int:
        """Agent: sleep until the daemon wakes the page (or `timeout_s`); its wake count."""
        futex_wait(ctypes.addressof(self._wake), seen, timeout_s)
        return self._wake.value

    @property
    def wakes(self) -> int:
        return self._wake.value

    def stamps(self, xqueue_id: int) -> tuple[float | None, float | None]:
        """When the daemon last set and last cleared this XQueue's flag (monotonic seconds)."""
        n = slot_of(xqueue_id)
        if n is None:
            return None, None
        (set_at,) = _STAMP.unpack_from(self._mm, SET_AT + 8 * n)
        (cleared_at,) = _STAMP.unpack_from(self._mm, CLEARED_AT + 8 * n)
        return set_at or None, cleared_at or None

    def close(self) -> None:
        """Daemon: ungate everything (whoever still maps the page), unmap, remove the file.
        The agent's view is not closed: XQueues may still hold `flags` (they drop it
        first), and the garbage collector unmaps it once none does."""
        if not self.owner:
            return
        self._mm[:SLOTS] = bytes(SLOTS)
        self.wake()  # the agent's gate thread looks again
        del self._wake, self._mapped
        self.flags.release()
        self.stalled.release()
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
