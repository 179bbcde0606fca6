"""Anticipation (hal.anticipation): the forecast of a periodic queue's next task, and the
board level held through its window."""

from __future__ import annotations

import time

import pytest

import hal.anticipation
from hal.anticipation import ENV, Anticipation, Forecast, Window, lead_us
from hal.board import LEVELS, PriorityBoard
from hal.errors import DeviceError

MS = 1e-3


def periodic(f: Forecast, starts: list[float], busy_s: float = 1 * MS) -> list[bool]:
    """Tasks arriving at `starts`, each busy for `busy_s`; whether each counted as an arrival."""
    arrivals = []
    for t in starts:
        arrivals.append(f.busy(t))
        f.idle(t + busy_s)
    return arrivals


def test_lead_from_the_environment():
    assert lead_us({}) == 500.0
    assert lead_us({ENV: " 500 "}) == 500.0
    assert lead_us({ENV: "0"}) == 0.0
    for bad in ("-1", "abc", "nan", "1e9", "inf"):
        with pytest.raises(DeviceError, match=ENV):
            lead_us({ENV: bad})


def test_a_steady_period_gives_a_window_before_the_next_task():
    f = Forecast(0.5 * MS)
    assert periodic(f, [i * 5 * MS for i in range(4)]) == [True] * 4
    assert f.window(16 * MS) is None, "three intervals are not enough"
    f.busy(20 * MS)
    f.idle(21 * MS)
    assert f.window(21 * MS) == pytest.approx(Window(25 * MS - 0.5 * MS, 25 * MS + 0.3 * MS))
    assert f.window(24.6 * MS) == pytest.approx(Window(30 * MS - 0.5 * MS, 30 * MS + 0.3 * MS)), (
        "too late to open the next window: the one after")
    assert f.window(29.6 * MS) is None, "two periods without a task: no longer foreseen"


def test_arrivals_early_and_late_of_the_grid_widen_the_window_and_too_much_gives_none():
    f = Forecast(0.2 * MS)
    periodic(f, [t * MS for t in (0, 4.8, 10, 15.3, 20)])  # a 5 ms grid: 0.2 ms early once, 0.3 late once
    assert f.window(21 * MS) == pytest.approx(Window(25 * MS - 0.2 * MS - 0.2 * MS, 25 * MS + 0.6 * MS), abs=1e-9), (
        "opened by the earliest arrival's lead, closed by twice the latest's lateness")
    cut = Forecast(0.5 * MS)
    periodic(cut, [t * MS for t in (0, 4.8, 10, 15.3, 20)])
    assert cut.window(21 * MS) == pytest.approx(Window(24.3 * MS, 25 * MS + 0.55 * MS), abs=1e-9), (
        "the closing is cut to keep the window within a quarter of the period (1.25 ms)")
    g = Forecast(0.5 * MS)
    periodic(g, [t * MS for t in (0, 5, 11, 15, 21)])  # a 6 / 4 ms mix: two of five 1 ms off any grid
    assert g.window(22 * MS) is None


def test_late_wake_ups_are_left_out_unless_a_quarter_of_the_arrivals_are_off_the_grid():
    steady = [i * 5 * MS for i in range(17)]  # 16 intervals of 5 ms
    expected = Window(85 * MS - 0.5 * MS, 85 * MS + 0.3 * MS)
    some = steady.copy()
    for i in (3, 8, 13):  # woken 0.6 ms late three times in sixteen periods
        some[i] += 0.6 * MS
    f = Forecast(0.5 * MS)
    periodic(f, some)
    assert f.window(81 * MS) == pytest.approx(expected, abs=1e-9), "neither widened nor refused"
    often = steady.copy()
    for i in range(1, 17, 2):  # late every other task: eight of seventeen
        often[i] += 0.6 * MS
    g = Forecast(0.5 * MS)
    periodic(g, often)
    assert g.window(81 * MS) is None, "not periodic enough, in the whole history or its recent part"
    short = Forecast(0.5 * MS)
    periodic(short, some[2:10])  # 8 arrivals, one of them late
    assert short.window(46 * MS) == pytest.approx(Window(50 * MS - 0.5 * MS, 50 * MS + 0.3 * MS), abs=1e-9)


def test_a_load_that_just_became_periodic_is_foreseen_from_its_recent_arrivals():
    f = Forecast(0.5 * MS)
    periodic(f, [t * MS for t in (0, 2, 9, 12)])  # a slow start, caught up
    periodic(f, [t * MS for t in (15, 20, 25)])  # then a 5 ms grid
    assert f.window(26 * MS) is None, "the start's arrivals still outnumber those on the grid"
    periodic(f, [30 * MS])
    assert f.window(31 * MS) == pytest.approx(Window(34.5 * MS, 35.3 * MS), abs=1e-9), (
        "the last five arrivals fit (one off the grid, as a quarter may be)")
    periodic(f, [35 * MS])  # the arrivals before those five were forgotten
    assert f.window(36 * MS) == pytest.approx(Window(39.5 * MS, 40.3 * MS), abs=1e-9)
    steady = [i * 5 * MS for i in range(17)]
    late = [t * MS + 2 * MS for t in (85, 90, 95, 100, 105)]  # a noisy stretch: five 2 ms late
    g = Forecast(0.5 * MS)
    periodic(g, steady + late + [t * MS for t in (110, 115, 120)])
    assert g.window(121 * MS) is None
    periodic(g, [125 * MS])
    assert g.window(126 * MS) == pytest.approx(Window(129.5 * MS, 130.3 * MS), abs=1e-9), (
        "foreseen again four periods after a noisy stretch, not twelve (when the late ones leave the history)")


def test_the_next_task_is_due_on_the_grid_not_a_period_after_the_last_arrival():
    late_last = [i * 5 * MS for i in range(8)]
    late_last[-1] += 0.6 * MS  # the last task woke late: the next is still due at 40 ms
    f = Forecast(0.5 * MS)
    periodic(f, late_last)
    assert f.window(36 * MS) == pytest.approx(Window(39.5 * MS, 40.3 * MS), abs=1e-9)
    skipped = [t * MS for t in (0, 5, 10, 20, 25, 30)]  # the task due at 15 ms did not come
    g = Forecast(0.5 * MS)
    periodic(g, skipped)
    assert g.window(31 * MS) == pytest.approx(Window(34.5 * MS, 35.3 * MS), abs=1e-9)
    extra = Forecast(0.5 * MS)
    periodic(extra, [t * MS for t in (0, 5, 10, 12, 15, 20)])  # a task between two: off the grid
    assert extra.window(21 * MS) == pytest.approx(Window(24.5 * MS, 25.3 * MS), abs=1e-9)


def test_a_window_is_refused_when_it_would_cover_too_much_of_the_period():
    f = Forecast(0.5 * MS)
    periodic(f, [i * 2 * MS for i in range(6)], busy_s=0.5 * MS)  # 2 ms period: 0.8 ms window is 40%
    assert f.window(10.5 * MS) is None


def test_launches_of_one_task_are_one_arrival():
    f = Forecast(0.5 * MS)
    assert f.busy(0.0)
    f.idle(0.1 * MS)
    assert not f.busy(0.15 * MS), "50 us of idle inside a task is not a new task"
    f.idle(1 * MS)
    assert f.busy(5 * MS)
    assert not f.busy(5.5 * MS), "busy again without going idle"


def test_news_of_an_idle_that_comes_after_the_next_busy_is_dropped():
    f = Forecast(0.5 * MS)
    assert f.busy(0.0)
    assert not f.busy(1.05 * MS), "the first task still counts as busy"
    f.idle(1 * MS)  # the first task's idle, from the thread it was left to, after the next busy
    assert not f.busy(1.1 * MS), "still busy: the late idle did not open a gap"
    f.idle(2 * MS)
    assert f.busy(5 * MS)


def test_reset_forgets_the_arrivals():
    f = Forecast(0.5 * MS)
    periodic(f, [i * 5 * MS for i in range(6)])
    assert f.window(26 * MS) is not None
    f.reset()
    assert f.window(26 * MS) is None


class _Level:
    def __init__(self, level: int) -> None:
        self.level = level

    def __call__(self) -> int:
        return self.level


LOOSE = {"tolerance": 0.5, "max_share": 0.6}  # a loaded test machine's sleeps are not steady


def wait_for(cond, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.5 * MS)
    return cond()


def drive(a: Anticipation, board: PriorityBoard, level: int, period_s: float, tasks: int) -> float:
    """Run `tasks` periodic tasks through the board as a queue would; returns when the last began."""
    start = time.monotonic()
    for i in range(tasks):
        due = start + i * period_s
        while time.monotonic() < due:
            time.sleep(0.2 * MS)
        board.activate(level)
        a.busy()
        time.sleep(1 * MS)
        board.deactivate(level)
        a.idle()
    return start + (tasks - 1) * period_s


def test_the_level_is_held_before_the_next_task_and_released_when_it_comes(tmp_path):
    board = PriorityBoard(tmp_path / "board")
    board.register(2)  # a lower level to park
    board.register(10)
    claims = []
    a = Anticipation(board, _Level(10), lead_s=10 * MS, claim=lambda: claims.append(board.word), **LOOSE)
    period = 40 * MS
    last = drive(a, board, 10, period, 6)
    assert a.windows >= 1
    due = last + period
    assert board.word == LEVELS, "nothing active between tasks"
    assert wait_for(lambda: board.word == LEVELS - 11, timeout=period), "held before the task is due"
    held_at = time.monotonic()
    assert a.holding, "the level is up for the window (a queue then raises it behind its launch)"
    assert held_at < due, f"held {1e3 * (held_at - due):.1f} ms after the task was due"
    while time.monotonic() < due:
        time.sleep(0.2 * MS)
    board.activate(10)
    a.busy()
    board.deactivate(10)
    a.idle()
    assert board.word == LEVELS, "the task came and went: the hold went with its arrival"
    assert not a.holding
    assert a.held_windows >= 1 and len(a.early_s) == a.held_windows
    assert a.held_windows <= len(claims) <= 2 * a.held_windows, "each hold claims the device (and again halfway)"
    assert set(claims) == {LEVELS - 11}, "claims are made while the level is held"


def test_a_failing_claim_is_logged_and_the_timer_goes_on(tmp_path, caplog):
    board = PriorityBoard(tmp_path / "board")
    board.register(0)

    def broken() -> None:
        raise RuntimeError("the device went away")

    bad = Anticipation(board, _Level(5), lead_s=5 * MS, claim=broken, **LOOSE)
    drive(bad, board, 5, 40 * MS, 6)
    assert wait_for(lambda: "the device went away" in caplog.text)
    bad.close()
    assert wait_for(lambda: board.word == LEVELS)
    good = Anticipation(board, _Level(7), lead_s=5 * MS, **LOOSE)
    drive(good, board, 7, 40 * MS, 6)
    assert wait_for(lambda: good.held_windows >= 1), "the timer thread still runs"
    good.close()
    assert board.word == LEVELS


class _StoppedClock:
    """The anticipation's timer clock, stopped: `now` is `t`, and timers wait in `timers`
    for the test to fire them."""

    def __init__(self, t: float) -> None:
        self.t = t
        self.timers: list[tuple[float, object]] = []

    def now(self) -> float:
        return self.t

    def call_at(self, when: float, fn) -> None:
        self.timers.append((when, fn))

    def call_soon(self, fn) -> None:
        fn()

    def fire(self, until: float, late_s: float) -> list[float]:
        """Run the timers due by `until`, in order, each `late_s` after it was due; the
        times they were set for."""
        fired = []
        while self.timers and min(w[0] for w in self.timers) <= until:
            self.timers.sort(key=lambda w: w[0])
            when, fn = self.timers.pop(0)
            self.t = when + late_s
            fn()  # may set timers of its own (a window's end plans the next)
            fired.append(when)
        return fired


def _stopped(tmp_path, monkeypatch, lower: int) -> tuple[_StoppedClock, PriorityBoard]:
    """The anticipation's timers on a stopped clock at 0, and a board with `lower` registered."""
    clock = _StoppedClock(0.0)
    monkeypatch.setattr(hal.anticipation, "_clock", clock)
    board = PriorityBoard(tmp_path / "board")
    board.register(lower)
    return clock, board


def test_holds_are_set_early_by_how_late_the_timer_began_the_last_ones(tmp_path, monkeypatch):
    clock, board = _stopped(tmp_path, monkeypatch, 0)
    a = Anticipation(board, _Level(5), lead_s=0.5 * MS)

    def task(t_ms: float) -> None:
        a.busy(t_ms * MS)
        clock.t = (t_ms + 1) * MS
        a.idle(clock.t)

    for t in (0, 5, 10, 15):
        task(t)
    assert not clock.timers, "four arrivals: no window yet"
    task(20)
    assert clock.fire(24.9 * MS, 0.1 * MS) == pytest.approx([24.5 * MS, 24.75 * MS]), "hold and claim again"
    assert list(a.late_s) == pytest.approx([0.1 * MS])
    assert board.word == LEVELS - 6 and a.held_windows == 1
    task(25)
    assert board.word == LEVELS
    assert clock.fire(29.9 * MS, 0.4 * MS)[1:] == pytest.approx([29.4 * MS, 29.65 * MS]), (
        "0.1 ms ahead of the window (29.5 ms), planned at the last window's end (25.3 ms)")
    task(30)
    assert clock.fire(34.9 * MS, 0.0)[1] == pytest.approx(34.5 * MS - 0.25 * MS), (
        "by the median lateness of the holds so far (0.25 ms)")
    assert list(a.late_s) == pytest.approx([0.1 * MS, 0.4 * MS, 0.0])
    assert a.summary() == {"windows": 3, "held": 3, "arrivals": 7, "arrivals_in_held_window": 2}, (
        "the tasks at 25 and 30 ms came into held windows; the third window's task has not come")


def _tasks(a: Anticipation, clock: _StoppedClock, board: PriorityBoard, level: int, starts_ms) -> None:
    """Tasks of 1 ms through the board as a queue runs them, at `starts_ms`, the timers due
    before each firing on time (a timer thread that is never late)."""
    for t in starts_ms:
        clock.fire(t * MS, 0.0)
        clock.t = t * MS
        board.activate(level)
        a.busy(clock.t)
        clock.t = (t + 1) * MS
        board.deactivate(level)
        a.idle(clock.t)


def test_windows_are_planned_between_tasks_never_while_one_runs(tmp_path, monkeypatch):
    clock, board = _stopped(tmp_path, monkeypatch, 0)
    a = Anticipation(board, _Level(5), lead_s=5 * MS)
    plans: list[bool] = []  # for each plan: whether a task ran then
    plan = a._plan

    def noted(now: float) -> None:
        plans.append(a._forecast.running)
        plan(now)

    monkeypatch.setattr(a, "_plan", noted)
    _tasks(a, clock, board, 5, range(0, 240, 40))
    assert a.windows >= 1, "an idle planned a window"
    assert clock.fire(236 * MS, 0.0)[-1] == pytest.approx(235 * MS) and board.word == LEVELS - 6, (
        "and it is held before the task is due (240 ms)")
    windows = a.windows
    clock.t = 240 * MS
    board.activate(5)
    a.busy(clock.t)  # the task comes into the hold and outlasts the window
    assert len(clock.fire(260 * MS, 0.0)) == 2, "the claim halfway and the window's end"
    assert a.windows == windows and not any(plans), "nothing was planned while the task ran"
    assert board.word == LEVELS - 6
    clock.t = 261 * MS
    board.deactivate(5)
    a.idle(clock.t)
    assert a.windows == windows + 1, "its idle planned the next one"
    assert board.word == LEVELS and not any(plans)
    assert [w for w, _ in clock.timers][0] == pytest.approx(275 * MS)
    a.close()
    assert board.word == LEVELS


def test_a_task_that_does_not_come_releases_the_hold(tmp_path, monkeypatch):
    clock, board = _stopped(tmp_path, monkeypatch, 0)
    a = Anticipation(board, _Level(5), lead_s=5 * MS)
    _tasks(a, clock, board, 5, range(0, 240, 40))
    clock.fire(236 * MS, 0.0)
    assert board.word == LEVELS - 6 and a.holding
    (end,) = clock.fire(275 * MS - 1e-9, 0.0)[1:]  # the task due at 240 ms does not come
    assert 240 * MS < end <= 241 * MS, "released soon after the task was due"
    assert board.word == LEVELS and not a.holding
    assert a.held_windows == len(a.early_s) + 1, "the last hold ended with no task"
    clock.fire(275 * MS, 0.0)
    assert board.word == LEVELS - 6, "the next window is planned and held all the same"
    a.close()
    assert board.word == LEVELS


def test_nothing_is_planned_or_held_without_a_lower_level_until_one_registers(tmp_path, monkeypatch):
    clock, board = _stopped(tmp_path, monkeypatch, 5)
    a = Anticipation(board, _Level(5), lead_s=5 * MS)
    _tasks(a, clock, board, 5, range(0, 240, 40))
    assert not clock.timers and a.windows == 0 and a.held_windows == 0, "nobody to park: no timers"
    assert board.word == LEVELS and a.arrivals == 6, "the arrivals are noted all the same"
    board.register(2)
    _tasks(a, clock, board, 5, [240])  # its arrivals are in the forecast already: an idle plans a window
    assert a.windows == 1
    clock.fire(276 * MS, 0.0)
    assert a.held_windows == 1 and board.word == LEVELS - 6, "a lower level came: the next window is held"
    a.close()


def test_reset_drops_a_hold(tmp_path, monkeypatch):
    clock, board = _stopped(tmp_path, monkeypatch, 0)
    a = Anticipation(board, _Level(5), lead_s=8 * MS)
    _tasks(a, clock, board, 5, range(0, 240, 40))
    clock.fire(233 * MS, 0.0)
    assert board.word == LEVELS - 6
    held = a.held_windows
    a.reset()
    assert board.word == LEVELS
    clock.fire(400 * MS, 0.0)
    assert board.word == LEVELS and a.held_windows == held, "the old window's timers do nothing after a reset"
