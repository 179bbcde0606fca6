"""hal.cuda.completions against a stand-in for CuPy, on any machine.

The contract that keeps a parked context out of the GPU's time slices (docs/architecture.md,
"Parking and make before break"): the completion thread sleeps on a blocking-sync marker
that the queue's own stream records right behind each pooled event, and never has a
stream of its own waiting on the queue's. A second stream whose cross-stream wait on a
parked stream is followed by a blocking-sync record keeps that context in the slices
(measured on the H100); the GPU tests cannot provoke it reliably, so this test holds the
layout in place. Also: callbacks in launch order, every event back in its pool.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

MODULE = Path(__file__).resolve().parents[2] / "hal" / "cuda" / "completions.py"


class FakeCuda:
    """The slice of `cupy` that hal.cuda.completions uses, with a log of what it did."""

    def __init__(self) -> None:
        self.log: list[tuple] = []
        self.events: dict[int, FakeEvent] = {}
        self.streams_created = 0
        self.lock = threading.Lock()
        ids = itertools.count(1)
        fake = self

        class CUDARuntimeError(RuntimeError):
            pass

        class FakeEvent:
            def __init__(self, block: bool = False, disable_timing: bool = False) -> None:
                self.ptr = next(ids)
                self.blocking = block
                self.reached = threading.Event()
                self.recorded_on = None
                fake.events[self.ptr] = self

            def record(self, stream) -> None:
                self.reached.clear()
                self.recorded_on = stream
                with fake.lock:
                    fake.log.append(("record", stream, self))
                stream.pending.append(self)

            @property
            def done(self) -> bool:
                return self.reached.is_set()

        def make_stream(*args, **kwargs):
            fake.streams_created += 1
            return FakeStream()

        def event_synchronize(ptr: int) -> None:
            event = fake.events[ptr]
            with fake.lock:
                fake.log.append(("sync", event, time.monotonic()))
            if not event.reached.wait(10):
                raise CUDARuntimeError("the stand-in GPU never reached the event")

        class Device:
            def __init__(self, index: int = 0) -> None:
                pass

            def __enter__(self):
                return self

            def __exit__(self, *exc) -> None:
                return None

        runtime = types.SimpleNamespace(
            setDevice=lambda index: None,
            eventSynchronize=event_synchronize,
            CUDARuntimeError=CUDARuntimeError,
        )
        self.module = types.ModuleType("cupy")
        self.module.cuda = types.SimpleNamespace(
            Event=FakeEvent, Stream=make_stream, Device=Device, runtime=runtime
        )


class FakeStream:
    """A queue's stream: the stand-in GPU reaches its recorded events in order."""

    def __init__(self) -> None:
        self.pending: list = []
        self.waits: list = []

    def wait_event(self, event) -> None:  # a cross-stream wait: the layout that must not come back
        self.waits.append(event)

    def run(self, n: int) -> None:
        """Reach the next `n` recorded events."""
        for _ in range(n):
            self.pending.pop(0).reached.set()

    def run_all(self) -> None:
        """Reach every event recorded so far."""
        self.run(len(self.pending))


@pytest.fixture
def completions(monkeypatch):
    fake = FakeCuda()
    monkeypatch.setitem(sys.modules, "cupy", fake.module)
    spec = importlib.util.spec_from_file_location("_completions_under_test", MODULE)
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, mod)  # dataclasses look their module up
    spec.loader.exec_module(mod)
    pool = mod.EventPool(0)
    return fake, pool, mod.Completions(0, pool)


def test_the_thread_waits_on_a_blocking_marker_in_the_queue_stream_and_has_no_stream_of_its_own(
    completions,
):
    fake, pool, comp = completions
    stream = FakeStream()
    got: list[str] = []
    all_done = threading.Event()

    def callback(cmd: str) -> None:
        got.append(cmd)
        if len(got) == 3:
            all_done.set()

    for cmd in ("a", "b", "c"):
        comp.add(1, cmd, callback, stream)
    # each entry: the pooled (spin-waitable) event, then the blocking-sync marker, both
    # recorded on the queue's stream, in that order
    records = [
        (s, e.blocking) for kind, s, e, *_ in (entry for entry in fake.log if entry[0] == "record")
    ]
    assert records == [(stream, False), (stream, True)] * 3
    stream.run(6)  # the GPU reaches all of them
    assert all_done.wait(10), f"callbacks so far: {got}"
    assert got == ["a", "b", "c"]
    synced = [entry[1] for entry in fake.log if entry[0] == "sync"]
    assert synced and all(event.blocking for event in synced), (
        "the thread must sleep on markers only"
    )
    assert all(event.recorded_on is stream for event in synced)
    assert fake.streams_created == 0, "the completion thread made a stream of its own"
    assert stream.waits == [], "a cross-stream wait on the queue's stream came back"
    assert comp.outstanding(1) == 0
    comp.close(1)


def test_events_go_back_to_their_pools_and_a_waited_queue_parks_them_until_the_wait_ends(
    completions,
):
    fake, pool, comp = completions
    stream = FakeStream()
    done = threading.Semaphore(0)
    comp.add(7, "x", lambda cmd: done.release(), stream)
    with comp.waiting(7):
        event = comp.event_of(7, "x")
        assert event is not None and not event.blocking
        stream.run(2)
    assert done.acquire(timeout=10)
    comp.close(7)
    # the pooled event was parked while waited for, and is back in the pool now
    assert pool.get() is event


def _recorder(until: str) -> tuple[list[tuple[str, int]], threading.Event, Callable[[str], None]]:
    """A completion callback that notes (command, calling thread), and the event it sets
    once command `until` is delivered."""
    calls: list[tuple[str, int]] = []
    reached = threading.Event()

    def callback(cmd: str) -> None:
        calls.append((cmd, threading.get_ident()))
        if cmd == until:
            reached.set()

    return calls, reached, callback


def _wait_until(predicate, what: str) -> None:
    deadline = threading.Event()
    for _ in range(1000):
        if predicate():
            return
        deadline.wait(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_waiter_delivers_what_it_waited_for_on_its_own_thread_and_leaves_the_rest(completions):
    """deliver_through: the entries through the waited-for command come off the lane and
    their callbacks run on the waiter's thread, in order, once; later ones stay with the
    completion thread."""
    fake, pool, comp = completions
    stream = FakeStream()
    calls, third, callback = _recorder(until="c")
    me = threading.get_ident()
    with comp.waiting(3):  # before the thread exists: it leaves the lane to us
        for cmd in ("a", "b", "c"):
            comp.add(3, cmd, callback, stream)
        stream.run(4)  # the GPU reaches a and b (event and marker each)
        comp.deliver_through(3, "b")
        assert calls == [("a", me), ("b", me)]
        assert comp.outstanding(3) == 1
        comp.deliver_through(3, "b")  # delivered already: nothing twice
        assert len(calls) == 2
    stream.run(2)
    assert third.wait(10)
    assert calls[2][0] == "c" and calls[2][1] != me
    assert comp.outstanding(3) == 0
    comp.close(3)
    assert len(pool._free) == 3  # every pooled event back


def test_a_whole_stream_wait_leaves_all_after_the_driver_to_later(completions):
    """wait_whole ("Delivered later"): the driver's wait, then all the rest goes to
    `later`: the entries tracked before it come off the lane there, their callbacks run
    in launch order, once, and the waiter leaves the lane (its thread stays away until
    then). Nothing tracked: the driver call alone. A driver that fails leaves the
    entries to the completion thread."""
    fake, pool, comp = completions
    stream = FakeStream()
    calls, _, callback = _recorder(until="b")
    handed: list = []
    for cmd in ("a", "b"):
        comp.add(6, cmd, callback, stream)
    comp.wait_whole(6, stream.run_all, handed.append)
    assert calls == [] and len(handed) == 1 and comp._lanes[6].waiters == 1
    handed[0]()
    assert [c for c, _ in calls] == ["a", "b"]
    assert comp.outstanding(6) == 0 and comp._lanes[6].waiters == 0
    assert len(pool._free) == 2  # both events pooled by the handed-over work

    ran = []
    comp.wait_whole(99, lambda: ran.append(1), handed.append)  # a bare queue: nothing tracked
    assert ran == [1] and len(handed) == 1 and 99 not in comp._lanes

    class DriverFailed(Exception):
        pass

    def failing() -> None:
        raise DriverFailed

    comp.add(6, "c", callback, stream)
    with pytest.raises(DriverFailed):
        comp.wait_whole(6, failing, handed.append)
    assert len(handed) == 1 and comp.outstanding(6) == 1 and comp._lanes[6].waiters == 0
    stream.run_all()
    _wait_until(lambda: [c for c, _ in calls] == ["a", "b", "c"], "the thread's delivery of c")
    comp.close(6)


def test_a_marker_the_thread_sleeps_on_goes_back_only_once_it_woke(completions):
    """A waiter that delivers the entry whose marker the completion thread waits on in the
    driver leaves that marker to the thread: pooled at once, a launch could record it
    again while the thread still waits on it."""
    fake, pool, comp = completions
    stream = FakeStream()
    calls: list[str] = []
    comp.add(5, "a", calls.append, stream)
    marker = next(e for kind, _, e in (x for x in fake.log if x[0] == "record") if e.blocking)
    _wait_until(lambda: any(x[0] == "sync" and x[1] is marker for x in list(fake.log)), "the thread's wait")
    with comp.waiting(5):
        stream.run(1)  # the pooled event only: the marker is not reached yet
        comp.deliver_through(5, "a")
        assert calls == ["a"]
        assert marker not in comp._markers._free
    stream.run(1)  # the thread wakes, finds nothing to deliver, and pools its marker
    _wait_until(lambda: marker in comp._markers._free, "the marker back in its pool")
    assert calls == ["a"]
    comp.close(5)


def _syncs_on(fake: FakeCuda, stream: FakeStream) -> list[float]:
    """When the thread went into the driver for an event of `stream`."""
    with fake.lock:
        return [x[2] for x in fake.log if x[0] == "sync" and x[1].recorded_on is stream]


def test_a_new_tasks_first_launch_is_left_to_a_waiter_for_the_grace(completions):
    """The thread stays out of the driver for `grace_s` after a lane goes busy: a waiter
    that comes in that time has the task to itself; without one the thread takes it
    after the grace, not before."""
    fake, _, comp = completions
    comp.grace_s = 0.05
    alone, waited = FakeStream(), FakeStream()
    calls, came, callback = _recorder(until="async")
    comp.add(1, "async", callback, alone)  # nobody will wait for this one
    added = time.monotonic()
    comp.add(2, "task", callback, waited)
    with comp.waiting(2):  # the application's thread comes to wait within the grace
        waited.run(2)
        time.sleep(0.1)  # twice the grace: the thread stays away all the same
        assert _syncs_on(fake, waited) == [], "the thread went into the driver for a waited task"
        comp.deliver_through(2, "task")
    assert calls == [("task", threading.get_ident())]
    _wait_until(lambda: _syncs_on(fake, alone), "the thread's wait for the task nobody waits for")
    assert _syncs_on(fake, alone)[0] - added >= 0.04, "it went into the driver only after the grace"
    alone.run(2)
    assert came.wait(10) and calls[-1][1] != threading.get_ident()
    time.sleep(0.1)
    assert _syncs_on(fake, waited) == [], "nor did it go there after the waiter left with nothing"
    comp.close(1)
    comp.close(2)


def test_a_waiter_that_comes_during_the_grace_ends_it_at_once(completions):
    """The thread does not wake at the grace's end, late in a short task, to find the waiter
    there: the waiter's arrival sends it to sleep until the waiter leaves."""
    fake, _, comp = completions
    comp.grace_s = 2.0
    stream = FakeStream()
    comp.add(4, "a", lambda cmd: None, stream)
    lane = comp._lanes[4]
    _wait_until(lambda: lane.grace, "the thread in its grace")
    with comp.waiting(4):
        start = time.monotonic()
        _wait_until(lambda: not lane.grace, "the thread out of its grace")
        assert time.monotonic() - start < 1.0
        stream.run(2)
        comp.deliver_through(4, "a")
    assert _syncs_on(fake, stream) == []
    comp.close(4)


def _waited_task(comp, key: int, stream: FakeStream, cmd: str) -> None:
    """A task its waiter delivers whole: launched, waited for in the driver, delivered."""
    comp.add(key, cmd, lambda c: None, stream)
    with comp.waiting(key):
        stream.run_all()
        comp.deliver_through(key, cmd)


def _build_streak(comp, key: int, stream: FakeStream) -> Any:
    """Waited tasks until the lane's thread looks for work on its own; the lane. The
    grace is long meanwhile: on a loaded host the thread must not take a task from a
    waiter that comes late (it would start the streak over)."""
    grace, comp.grace_s = comp.grace_s, 5.0
    for i in range(comp.streak + 1):  # the thread sees the streak at its next idle wait
        _waited_task(comp, key, stream, f"w{i}")
    lane = comp._lanes[key]
    _wait_until(lambda: lane.polling, "the thread looking on its own")
    comp.grace_s = grace
    return lane


def test_a_lane_that_waiters_deliver_whole_stops_waking_its_thread_at_launches(completions):
    """After `streak` tasks in a row that a waiter delivered whole, neither a task's
    launch nor its waiter wakes the thread (it looks every poll_s). A task that nobody
    waits for is still delivered, by the thread, about poll_s late, and the streak
    starts over: the next launch wakes the thread again. Meanwhile a launch records no
    marker: the thread records one of its own, on the queue's stream, for the task it
    collects."""
    fake, _, comp = completions
    comp.grace_s, comp.poll_s = 5.0, 0.3
    stream = FakeStream()
    lane = _build_streak(comp, 6, stream)
    wakes, start, logged = lane.wakes, time.monotonic(), len(fake.log)
    for i in range(5):
        _waited_task(comp, 6, stream, f"t{i}")
    polls = (time.monotonic() - start) / comp.poll_s
    assert lane.wakes - wakes <= 1 + polls, "launches or waiters woke the thread"
    assert _syncs_on(fake, stream) == []
    records = [(x[1], x[2].blocking) for x in fake.log[logged:] if x[0] == "record"]
    assert records == [(stream, False)] * 5, "a waited lane's launches recorded markers"
    comp.grace_s = 0.01
    calls, came, callback = _recorder(until="async")
    comp.add(6, "async", callback, stream)  # nobody waits for this one
    _wait_until(lambda: stream.run_all() or came.is_set(), "the thread collecting it")
    own = [x[1] for x in fake.log if x[0] == "sync" and x[1].recorded_on is stream]
    assert own and own[-1].blocking, "the thread slept on no marker of its own"
    assert calls == [("async", calls[0][1])] and calls[0][1] != threading.get_ident()
    _wait_until(lambda: not lane.polling, "the thread waiting for a launch again")
    assert lane.streak == 0
    wakes = lane.wakes
    comp.add(6, "next", lambda c: None, stream)
    _wait_until(lambda: lane.wakes > wakes, "the launch waking the thread")
    assert [x[2].blocking for x in fake.log if x[0] == "record"][-2:] == [False, True]  # a marker again
    stream.run(2)
    _wait_until(lambda: comp.outstanding(6) == 0, "the thread delivering it")
    comp.close(6)


def test_a_lane_whose_thread_sees_each_task_begin_still_builds_its_streak(completions):
    """A periodic task's first launch wakes the thread, which waits out the grace; the
    waiter's arrival sends it back to sleep while the task runs. That idle wait is no
    quiet spell: the streak grows through it and the lane goes to looking on its own.
    (Reset there, as it once was, the streak never passed 1 in this, the periodic
    case that the streak is for: the H100 fixed-priority foreground's thread woke
    twice in every task.)"""
    _, _, comp = completions
    comp.grace_s = 5.0
    stream = FakeStream()
    for i in range(comp.streak + 1):
        cmd = f"p{i}"
        comp.add(9, cmd, lambda c: None, stream)
        lane = comp._lanes[9]
        if lane.polling:
            break
        _wait_until(lambda: lane.grace, "the thread waiting out the task's grace")
        with comp.waiting(9):
            _wait_until(lambda: not lane.grace, "the waiter ending the grace")
            stream.run_all()
            comp.deliver_through(9, cmd)
    _wait_until(lambda: lane.polling, "the thread looking on its own")
    comp.close(9)


def test_a_waited_lane_gone_quiet_stops_looking(completions):
    """Quiet for quiet_s since its last task began, the lane's thread stops looking every
    poll_s and sleeps until a launch wakes it, which then does at once."""
    _, _, comp = completions
    comp.grace_s, comp.poll_s, comp.quiet_s = 0.01, 0.02, 0.2
    stream = FakeStream()
    lane = _build_streak(comp, 8, stream)
    _wait_until(lambda: not lane.polling, "the thread no longer looking")
    wakes = lane.wakes
    time.sleep(0.2)  # ten polls' time
    assert lane.wakes == wakes
    _, came, callback = _recorder(until="async")
    comp.add(8, "async", callback, stream)
    _wait_until(lambda: stream.run_all() or came.is_set(), "the thread collecting it")
    comp.close(8)
