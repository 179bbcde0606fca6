"""Every key binding against a real xschedd and a real workload process (Pilot)."""

from __future__ import annotations

import pytest
from conftest import BG, FG, Stack
from textual.command import CommandPalette
from tui_fakes import DaemonProbe, NoGpu, wait_for

from xsched_tui.app import BINDINGS, RESORT_S, XSchedConsole
from xsched_tui.records import LinkState, QueueState
from xsched_tui.screens.config import ConfigDialog
from xsched_tui.screens.help import HelpScreen
from xsched_tui.screens.hint import HintDialog
from xsched_tui.screens.policy import PolicyPicker
from xsched_tui.widgets.columns import COLUMN_KEYS

pytestmark = pytest.mark.asyncio

SIZE = (170, 40)


@pytest.fixture(scope="module")
def daemon_stack(tmp_path_factory):
    import shutil
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp(prefix="xtui-", dir="/tmp"))
    s = Stack(root)
    s.start_daemon()
    s.start_workload(FG, BG, duration_s=120)
    probe = DaemonProbe(s.socket)
    yield s, probe
    probe.close()
    s.close()
    shutil.rmtree(root, ignore_errors=True)


def console(s: Stack) -> XSchedConsole:
    return XSchedConsole(s.target, devices=NoGpu())


async def ready(pilot, app: XSchedConsole) -> None:
    await wait_for(pilot, lambda: app.table.row_count == 2, 15, "fg and bg in the table")


def row_named(app: XSchedConsole, name: str):
    return next(r for r in app.store.xqueues.values() if r.name == name)


async def select(pilot, app: XSchedConsole, name: str) -> None:
    app.table.select_id(row_named(app, name).xqueue_id)
    await pilot.pause()


async def open_hint_dialog(pilot, app: XSchedConsole, name: str) -> None:
    await ready(pilot, app)
    await select(pilot, app, name)
    await pilot.press("h")
    assert isinstance(app.screen, HintDialog)


async def test_queues_of_a_real_workload_appear_with_priorities_and_live_counters(daemon_stack):
    s, _ = daemon_stack
    app = console(s)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        assert app.connection.state is LinkState.CONNECTED
        assert row_named(app, "fg").priority == 10 and row_named(app, "bg").priority == 0
        before = row_named(app, "bg").completed
        await wait_for(pilot, lambda: row_named(app, "bg").completed > before, 5, "bg to progress")
        await wait_for(pilot, lambda: row_named(app, "bg").share > 0, 5, "a device share")


async def test_p_picks_a_policy_and_the_daemon_switches(daemon_stack):
    s, probe = daemon_stack
    app = console(s)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("p")
        assert isinstance(app.screen, PolicyPicker)
        available = list(app.store.policy.available)
        assert available == list(probe.policy().available)
        steps = available.index("UP") - available.index(app.store.policy.name)
        await pilot.press(*(["down"] * steps if steps > 0 else ["up"] * -steps), "enter")
        await wait_for(pilot, lambda: app.store.policy.name == "UP", 5, "UP in the header")
        assert probe.policy().name == "UP"
        await pilot.press("p")
        await pilot.press("escape")  # cancel keeps the policy
        assert probe.policy().name == "UP"
        app.set_policy("HPF")
        await wait_for(pilot, lambda: app.store.policy.name == "HPF", 5, "HPF back")


async def test_plus_and_minus_move_the_selected_xqueues_priority(daemon_stack):
    s, probe = daemon_stack
    app = console(s)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "bg")
        start = row_named(app, "bg").priority
        await pilot.press("plus", "plus")
        await wait_for(pilot, lambda: row_named(app, "bg").priority == start + 2, 5, "priority +2")
        await pilot.press("minus")
        await wait_for(pilot, lambda: row_named(app, "bg").priority == start + 1, 5, "priority -1")
        assert probe.xqueue("bg").priority == start + 1


async def test_hint_dialog_refuses_bad_input_then_sends_a_utilization_hint(daemon_stack):
    s, probe = daemon_stack
    app = console(s)
    async with app.run_test(size=SIZE) as pilot:
        await open_hint_dialog(pilot, app, "bg")
        app.screen.query_one("#hint-value").value = "500"
        await pilot.press("enter")
        assert isinstance(app.screen, HintDialog), "a bad value must keep the dialog open"
        error = str(app.screen.query_one("#hint-error").render())
        assert "utilization 500 is out of range [0, 100]" in error
        app.screen.query_one("#hint-value").value = "30"
        await pilot.press("enter")
        assert not isinstance(app.screen, HintDialog)
        await wait_for(pilot, lambda: "util=30%" in row_named(app, "bg").hints, 5, "util=30% hint")
        bg = probe.xqueue("bg").info.xqueue_id
        assert any(h.utilization.xqueue_id == bg and h.utilization.utilization == 30
                   for h in probe.policy().hints if h.WhichOneof("kind") == "utilization")


async def test_c_configures_the_level_in_the_workload_process(daemon_stack):
    s, probe = daemon_stack
    app = console(s)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "fg")
        await pilot.press("c")
        assert isinstance(app.screen, ConfigDialog)
        app.screen.query_one("#cfg-level").value = "9"
        await pilot.press("enter")
        assert "level 9 is out of range [1, 3]" in str(app.screen.query_one("#config-error").render())
        app.screen.query_one("#cfg-level").value = "2"
        await pilot.press("enter")
        await wait_for(pilot, lambda: row_named(app, "fg").level == 2, 5, "level 2")
        assert probe.xqueue("fg").info.level == 2


async def test_s_holds_and_r_releases_the_selected_xqueue(daemon_stack):
    s, probe = daemon_stack
    app = console(s)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "bg")
        await pilot.press("s")
        await wait_for(pilot, lambda: row_named(app, "bg").state is QueueState.HELD, 5, "held")
        assert probe.xqueue("bg").held
        await pilot.press("r")
        await wait_for(pilot, lambda: row_named(app, "bg").state is not QueueState.HELD, 5, "released")
        assert not probe.xqueue("bg").held


async def test_g_toggles_gang_mode_in_the_daemon_and_the_header_shows_it(daemon_stack):
    s, probe = daemon_stack
    app = console(s)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        header = app.query_one("#header")
        assert not probe.policy().gang and "gang off" in str(header.render())
        await pilot.press("g")
        await wait_for(pilot, lambda: app.store.policy.gang, 5, "gang mode on")
        assert probe.policy().gang and probe.policy().name == "HPF"  # the policy stays
        assert "gang on" in str(header.render())
        assert "Gang mode off" in {c.title for c in app.get_system_commands(app.screen)}
        await pilot.press("g")
        await wait_for(pilot, lambda: not app.store.policy.gang, 5, "gang mode off")
        assert not probe.policy().gang


async def test_filter_sort_help_palette_and_quit(daemon_stack):
    s, _ = daemon_stack
    app = console(s)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("slash", "b", "g")
        await wait_for(pilot, lambda: app.table.row_count == 1, 3, "the filter to keep bg")
        await pilot.press("escape", "o")
        assert app.table.sort_column == COLUMN_KEYS[COLUMN_KEYS.index("id") + 1]
        await pilot.press("v")
        assert app.table.sort_reverse
        await pilot.press("slash", "backspace", "backspace", "escape")
        await wait_for(pilot, lambda: app.table.row_count == 2, 3, "both rows back")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = app.screen.query_one("#help-keys")
        shown = {str(keys.get_row_at(i)[1]) for i in range(keys.row_count)}
        assert {b.tooltip for b in BINDINGS} <= shown
        await pilot.press("escape")
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Change policy…", "Raise priority", "Lower priority", "Send hint…",
                "Configure XQueue…", "Suspend XQueue", "Resume XQueue", "Policy: CFS",
                "Gang mode on"} <= titles
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press("escape")
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_the_table_keeps_following_the_daemon_while_a_dialog_is_open(daemon_stack):
    """Stream updates and timers reach the console's screen, not the dialog on top of it:
    a workload that comes and goes under an open dialog shows, then leaves the table."""
    s, _ = daemon_stack
    app = console(s)
    async with app.run_test(size=SIZE) as pilot:
        await open_hint_dialog(pilot, app, "bg")
        extra = s.start_workload("name=extra,priority=5,commands=4,command_us=300", duration_s=3)
        await wait_for(pilot, lambda: app.table.row_count == 3, 15, "the new XQueue in the table")
        extra.wait(timeout=30)
        await wait_for(pilot, lambda: app.table.row_count == 2, 15 + RESORT_S,
                       "the ended XQueue gone from the table")
        assert isinstance(app.screen, HintDialog)
        await pilot.press("escape")
        assert not isinstance(app.screen, HintDialog)
