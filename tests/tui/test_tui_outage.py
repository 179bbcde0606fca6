"""The console outlives the daemon: it shows the outage and recovers when xschedd returns."""

from __future__ import annotations

import pytest
from conftest import BG, FG, Stack
from tui_fakes import NoGpu, wait_for

from xsched_tui.app import RESORT_S, XSchedConsole
from xsched_tui.messages import StatusChanged
from xsched_tui.records import LinkState, StatusChange
from xsched_tui.widgets.xqueue_table import XQueueTable

pytestmark = pytest.mark.asyncio


async def test_console_starts_without_a_daemon_shows_the_outage_and_recovers(stack: Stack):
    app = XSchedConsole(stack.target, devices=NoGpu())
    async with app.run_test(size=(170, 40)) as pilot:
        await wait_for(pilot, lambda: app.connection.state is LinkState.DOWN, 5, "daemon down")
        assert "daemon down" in str(app.query_one("#empty").render())
        stack.start_daemon()
        stack.start_workload(FG, BG)
        await wait_for(pilot, lambda: app.table.row_count == 2, 15, "queues after the daemon came up")

        stack.stop_daemon()
        await wait_for(pilot, lambda: app.connection.state is not LinkState.CONNECTED, 5, "outage")
        await wait_for(pilot, lambda: app.table.row_count == 0, 5, "the table to empty")
        assert app.query_one("#empty").display

        stack.start_daemon()  # the agents re-register; the console reconnects by itself
        await wait_for(pilot, lambda: app.connection.state is LinkState.CONNECTED, 10, "reconnect")
        await wait_for(pilot, lambda: app.table.row_count == 2, 15, "queues back")
        assert not app.query_one("#empty").display


async def test_ticks_and_messages_that_land_after_the_widgets_are_gone_are_dropped(stack: Stack):
    """On exit Textual removes the widgets before it stops the timers: a late resort tick,
    panel refresh, link change or status change must not raise (CI once saw NoMatches)."""
    app = XSchedConsole(stack.target, devices=NoGpu())
    async with app.run_test(size=(170, 40)) as pilot:
        await wait_for(pilot, lambda: app.connection.state is LinkState.DOWN, 5, "daemon down")
        await app.query_one(XQueueTable).remove()
        app._touched_since_sort = app._panels_stale = True
        app._queue_change(StatusChange(reset=True))
        app.post_message(StatusChanged())
        await pilot.pause(2 * RESORT_S)  # resort and panel timers tick; reconnects fail
