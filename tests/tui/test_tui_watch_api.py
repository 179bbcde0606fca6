"""What the console needs from WatchStatus beyond rows: the daemon's share of each XQueue
(time ready and not suspended over a sliding window) and a heartbeat, so that a silent
daemon can be told from one with nothing to say."""

from __future__ import annotations

import os
import signal

import grpc
import pytest
from conftest import Stack
from tui_fakes import fake_console_at, wait_for

from protos.xsched.v1 import control_pb2 as cpb
from protos.xsched.v1 import control_pb2_grpc
from xsched_tui.records import LinkState, QueueState
from xschedd.status import ActiveWindow
from xschedd.watch import SHARE_STEP, ShareTracker

SIZE = (170, 40)


def test_active_window_is_the_part_of_the_last_seconds_the_condition_held():
    w = ActiveWindow(now=100.0, window_s=5.0, buckets=20)
    w.set(True, 100.0)
    assert w.fraction(101.0) == 1.0  # a young queue is judged on its life so far
    w.set(False, 102.0)
    assert w.fraction(104.0) == pytest.approx(0.5)
    assert w.fraction(106.0) == pytest.approx(0.75 / 4.75)  # 101.25-106: 0.75 s active
    assert w.fraction(110.0) == 0.0
    w.set(True, 110.0)
    assert w.fraction(112.5) == pytest.approx(2.5 / 4.75)


def test_active_window_stays_small_however_often_the_state_flips():
    w = ActiveWindow(now=0.0, window_s=5.0, buckets=20)
    t = 0.0
    for i in range(20_000):  # 1 ms on, 1 ms off for 40 s
        t += 0.001
        w.set(i % 2 == 0, t)
    assert w.fraction(t) == pytest.approx(0.5, abs=0.01)
    assert len(w._sums) <= 21


class _Rec:
    def __init__(self, share: float) -> None:
        self.value = share

    def share(self) -> float:
        return self.value


def test_share_tracker_finds_the_xqueues_whose_share_drifted_from_what_was_sent():
    tracker = ShareTracker()
    tracker.sent([(1, 0.5), (2, 0.5)])
    recs = {1: _Rec(0.5 + SHARE_STEP / 2), 2: _Rec(0.5 - 2 * SHARE_STEP), 3: _Rec(0.2)}
    assert tracker.drifted(recs) == {2, 3}
    tracker.sent([(2, recs[2].value)], removed=[1])
    assert tracker.drifted(recs) == {1, 3}  # 1 was forgotten: its share counts as unsent


def test_watch_status_beats_when_asked_and_nothing_changes(stack: Stack):
    stack.start_daemon()
    with grpc.insecure_channel(f"unix:{stack.socket}") as channel:
        stub = control_pb2_grpc.ControlServiceStub(channel)
        stream = stub.WatchStatus(cpb.WatchStatusRequest(heartbeat_ms=100), timeout=10)
        first = next(stream)
        assert first.snapshot.heartbeat_ms == 100 and first.snapshot.share_window_s == 5.0
        kinds = [next(stream).WhichOneof("kind") for _ in range(3)]
        stream.cancel()
        assert kinds == ["heartbeat"] * 3
        # a client that does not ask (one older than heartbeats) gets none
        quiet = stub.WatchStatus(cpb.WatchStatusRequest(), timeout=1.5)
        assert next(quiet).snapshot.heartbeat_ms == 0
        with pytest.raises(grpc.RpcError) as silence:
            next(quiet)
        assert silence.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


@pytest.mark.asyncio
async def test_a_held_xqueues_share_fades_to_zero_without_events(live_stack: Stack):
    app = fake_console_at(f"unix:{live_stack.socket}")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 2, 15, "fg and bg")
        bg = next(r for r in app.store.xqueues.values() if r.name == "bg")
        await wait_for(pilot, lambda: app.store.xqueues[bg.xqueue_id].share > 0.2, 15, "bg running")
        app.table.select_id(bg.xqueue_id)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.store.xqueues[bg.xqueue_id].state is QueueState.HELD,
                       5, "bg held")
        # held, bg sends no more events: only the daemon's periodic re-send brings it down
        await wait_for(pilot, lambda: app.store.xqueues[bg.xqueue_id].share < 0.01, 15,
                       "bg's share to fade out of its 5 s window")
        await pilot.press("r")


@pytest.mark.asyncio
async def test_the_headers_decision_count_keeps_moving(live_stack: Stack):
    app = fake_console_at(f"unix:{live_stack.socket}")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 2, 15, "fg and bg")
        first = app.store.policy.decisions
        await wait_for(pilot, lambda: app.store.policy.decisions > first, 10,
                       "the decision count to move on without a policy change")


@pytest.mark.asyncio
async def test_the_link_turns_silent_while_the_daemon_is_stopped_and_recovers(live_stack: Stack):
    app = fake_console_at(f"unix:{live_stack.socket}", heartbeat_ms=100)
    daemon = live_stack.daemon
    assert daemon is not None
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.table.row_count == 2, 15, "fg and bg")
        await pilot.pause(0.5)
        assert app.connection.state is LinkState.CONNECTED, "heartbeats keep a quiet link alive"
        os.kill(daemon.pid, signal.SIGSTOP)
        try:
            await wait_for(pilot, lambda: app.connection.state is LinkState.SILENT, 3, "silent")
            assert "daemon silent" in str(app.query_one("#header").render())
            assert app.table.row_count == 2, "the last known state stays on screen"
        finally:
            os.kill(daemon.pid, signal.SIGCONT)
        await wait_for(pilot, lambda: app.connection.state is LinkState.CONNECTED, 5, "back")
