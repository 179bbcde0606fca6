"""The priority board (hal.board): levels in flight shared across processes, fail-safe."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hal.board import ENV, HEADER, LEVELS, SLOTS, BoardFull, PriorityBoard, enabled, level_of, may_run
from hal.errors import DeviceError

ROOT = Path(__file__).resolve().parents[2]

_OTHER = r"""
import sys, time
from hal.board import PriorityBoard
b = PriorityBoard(sys.argv[1])
b.register(int(sys.argv[2]))
b.activate(int(sys.argv[2]))
print("active", flush=True)
line = sys.stdin.readline()
if line.strip() == "idle":
    b.deactivate(int(sys.argv[2]))
    print("idle", flush=True)
    sys.stdin.readline()
"""


def other(path: Path, level: int) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", _OTHER, str(path), str(level)], cwd=ROOT, text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert p.stdout.readline().strip() == "active"
    return p


def test_levels_map_and_the_run_rule():
    assert [level_of(p) for p in (-5, 0, 7, 31, 99)] == [0, 0, 7, 31, 31]
    assert all(may_run(LEVELS, lv) for lv in range(LEVELS))  # nothing active
    word = LEVELS - 11  # level 10 active
    assert may_run(word, 10) and may_run(word, 11) and not may_run(word, 9) and not may_run(word, 0)


def test_the_word_follows_the_highest_active_level_with_counts(tmp_path):
    b = PriorityBoard(tmp_path / "board")
    assert b.word == LEVELS
    b.activate(3)
    b.activate(10)
    b.activate(10)
    assert b.word == LEVELS - 11
    b.deactivate(10)
    assert b.word == LEVELS - 11, "one of two level-10 queues is still in flight"
    b.deactivate(10)
    assert b.word == LEVELS - 4
    b.deactivate(3)
    assert b.word == LEVELS
    b.deactivate(3)  # an extra deactivate does not go negative
    b.activate(3)
    assert b.word == LEVELS - 4
    b.close()
    assert PriorityBoard(tmp_path / "board").word == LEVELS


def test_outranked_reads_the_registered_levels(tmp_path):
    b = PriorityBoard(tmp_path / "board")
    b.register(0)
    assert not b.outranked(0)
    b.register(10)
    assert b.outranked(0) and b.outranked(9) and not b.outranked(10)
    b.unregister(10)
    assert not b.outranked(0)
    b.close()


def test_alone_and_below_read_the_registered_levels_of_every_process(tmp_path):
    path = tmp_path / "board"
    b = PriorityBoard(path)
    b.register(5)
    b.register(5)  # a second queue of the same level: still nobody else
    assert b.alone(5) and not b.below(5)
    for level, below in ((2, True), (9, False)):  # another process, lower then higher
        p = other(path, level)
        assert not b.alone(5) and b.below(5) is below
        p.stdin.write("stop\n")
        p.stdin.flush()
        p.wait(10)
        b.reap()  # it left without unregistering
        assert b.alone(5)
    b.close()


def test_another_process_level_shows_and_its_idle_wakes_a_watcher(tmp_path):
    path = tmp_path / "board"
    b = PriorityBoard(path)
    b.register(0)
    p = other(path, 12)
    try:
        assert b.word == LEVELS - 13 and b.outranked(0)
        seen: list[int] = []
        woke = threading.Event()

        def cb(word: int) -> bool:
            seen.append(word)
            if may_run(word, 0):
                woke.set()
            return not woke.is_set()  # "still parked" until level 12 goes idle

        b.watch(cb)
        time.sleep(0.2)
        assert not woke.is_set()
        t0 = time.monotonic()
        p.stdin.write("idle\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == "idle"
        assert woke.wait(2), f"the watcher never saw level 12 go idle: {seen[-5:]}"
        assert time.monotonic() - t0 < 1.0
        b.unwatch(cb)
    finally:
        p.stdin.close()
        p.wait(10)
        b.close()


def test_a_killed_process_levels_are_reaped(tmp_path):
    path = tmp_path / "board"
    b = PriorityBoard(path)
    p = other(path, 20)
    assert b.word == LEVELS - 21
    os.kill(p.pid, signal.SIGKILL)
    p.wait(10)
    assert b.word == LEVELS - 21, "the dead process's slot stays until reaped"
    b.reap()
    assert b.word == LEVELS
    b.close()


def test_a_watcher_reaps_on_its_own(tmp_path):
    """A parked queue must not wait forever on a process that died while in flight."""
    path = tmp_path / "board"
    b = PriorityBoard(path)
    p = other(path, 20)
    free = threading.Event()

    def cb(word: int) -> bool:
        if may_run(word, 0):
            free.set()
        return not free.is_set()

    b.watch(cb)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(10)
    assert free.wait(2), "the watcher did not reap the dead process's level"
    b.close()


def test_slots_are_reused_after_a_process_exits(tmp_path):
    path = tmp_path / "board"
    b = PriorityBoard(path)
    b.activate(1)
    for _ in range(3):
        p = other(path, 5)
        p.stdin.close()
        p.wait(10)
    assert int(b.words[2]) <= 2, "an exited process's slot is taken again"
    assert b.word == LEVELS - 2
    b.close()


@pytest.mark.parametrize("bad", [-1, LEVELS])
def test_level_out_of_range_is_refused(tmp_path, bad):
    b = PriorityBoard(tmp_path / "board")
    with pytest.raises(ValueError, match="level"):
        b.activate(bad)
    b.close()



def test_the_switch_reads_on_and_off_and_refuses_anything_else():
    assert enabled({}) is False and enabled({ENV: ""}) is False
    assert all(enabled({ENV: v}) for v in ("1", "on", "TRUE", " yes "))
    assert not any(enabled({ENV: v}) for v in ("0", "off", "False", "no"))
    with pytest.raises(DeviceError, match="XSCHED_CUDA_BOARD='maybe': expected 1"):
        enabled({ENV: "maybe"})


def test_a_new_handle_reaps_what_dead_processes_left(tmp_path):
    path = tmp_path / "board"
    p = other(path, 20)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(10)
    assert PriorityBoard(path).word == LEVELS


def test_a_full_board_opens_but_refuses_a_level(tmp_path):
    """Every slot held by a live process: opening works, registering says why."""
    path = tmp_path / "board"
    b = PriorityBoard(path)
    b.words[HEADER::4][:SLOTS] = os.getppid()  # a live process that is not us
    b.words[2] = SLOTS
    full = PriorityBoard.__new__(PriorityBoard)
    full.__init__(path)  # a second handle in this process would share our pid: fake a new one
    full._pid = os.getpid() + 1_000_000
    with pytest.raises(BoardFull, match="is full"):
        full.register(0)


_HOLDER = r"""
import fcntl, sys, time
fd = open(sys.argv[1], "r+")
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
fcntl.flock(fd, fcntl.LOCK_UN)
"""


def test_a_write_waits_for_another_process_lock_without_stopping_this_process(tmp_path):
    """hal.shm.lock_file: a write that finds the board locked by another process waits
    for it, letting this process's other threads run meanwhile (the interpreter lock is
    kept only for calls that cannot block)."""
    b = PriorityBoard(tmp_path / "board")
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path / "board"), "0.4"],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        ticks = []
        stop = threading.Event()
        ticker = threading.Thread(target=lambda: [ticks.append(1) or time.sleep(0.01) for _ in iter(stop.is_set, True)])
        ticker.start()
        start = time.monotonic()
        b.activate(5)
        waited = time.monotonic() - start
        stop.set()
        ticker.join()
        assert waited > 0.1, "the write went through while another process held the lock"
        assert b.word == LEVELS - 6
        assert len(ticks) >= 5, "the waiting write stopped this process's other threads"
    finally:
        holder.wait(10)
    b.deactivate(5)
    assert b.word == LEVELS
