"""Thousands of real XQueues: four agent processes register 500 each with a real xschedd;
the console shows them all, scrolls, sorts and filters them, and keeps answering keys."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Stack
from tui_fakes import NoGpu, wait_for

from xsched_tui import launch
from xsched_tui.app import XSchedConsole

pytestmark = pytest.mark.asyncio

PROCESSES, PER_PROCESS = 4, 500
TOTAL = PROCESSES * PER_PROCESS
HELPER = Path(__file__).with_name("many_xqueues.py")


@pytest.fixture
def crowd(stack: Stack) -> Stack:
    stack.start_daemon()
    for k in range(PROCESSES):
        stack.workloads.append(subprocess.Popen(
            [sys.executable, str(HELPER), "--prefix", f"p{k}-", "--queues", str(PER_PROCESS)],
            env=launch.workload_env(stack.socket, stack.sim_socket),
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        ))  # fmt: skip
    return stack


def names(app: XSchedConsole) -> list[str]:
    return [app.store.xqueues[xid].name for xid in app.table.shown_ids()]


async def test_thousands_of_real_xqueues_appear_scroll_sort_and_filter(crowd: Stack):
    app = XSchedConsole(crowd.target, devices=NoGpu())
    async with app.run_test(size=(170, 40)) as pilot:
        table = app.table
        await wait_for(pilot, lambda: table.row_count == TOTAL, 30, f"{TOTAL} XQueues in the table")
        assert len(app.store.processes) == PROCESSES
        assert f"{TOTAL} XQueues, {PROCESSES} processes" in str(app.query_one("#header").render())

        # scrolling: the cursor drags the view along; only the rows in view are rendered
        await pilot.press("end")
        assert table.cursor_row == TOTAL - 1
        # the view follows the cursor after a refresh: on a loaded machine, not by the next key's return
        await wait_for(pilot, lambda: table.scroll_y == table.max_scroll_y, 5, "the view at the bottom")
        assert table.max_scroll_y > 0
        bottom = table.render_line(table._body_height).text  # the last line above the scrollbar
        assert app.store.xqueues[table.selected_id].name in bottom
        await pilot.press("pageup")
        assert table.cursor_row < TOTAL - 1 and table.cursor_row in table._visible_range()
        await pilot.press("home")
        assert table.cursor_row == 0
        await wait_for(pilot, lambda: table.scroll_y == 0, 5, "the view at the top")

        # sorting: by name, then reversed
        await pilot.press("o")
        assert table.sort_column == "name"
        assert names(app) == sorted(names(app)) and names(app)[0] == "p0-0000"
        await pilot.press("v")
        assert names(app)[0] == f"p{PROCESSES - 1}-{PER_PROCESS - 1:04d}"

        # filtering one process's XQueues out of the crowd, and back
        await pilot.press("slash", "p", "2", "minus")
        await wait_for(pilot, lambda: table.row_count == PER_PROCESS, 5, "the p2- XQueues")
        assert all(n.startswith("p2-") for n in names(app))
        await pilot.press("backspace", "backspace", "backspace", "escape")
        await wait_for(pilot, lambda: table.row_count == TOTAL, 5, "every XQueue back")

        # responsive: updates keep flowing (the active queues change state) and keys act
        seen = app.store.updates
        await wait_for(pilot, lambda: app.store.updates > seen + 3, 10, "more status updates")
        start = table.cursor_row  # the selection made under the filter is kept
        await pilot.press("down", "down", "down")
        assert table.cursor_row == start + 3
        assert app.store.xqueues[table.selected_id].name == names(app)[start + 3]
