"""Snapshots of the main screens (pytest-textual-snapshot) over a recorded daemon state.

The fake ControlService serves fixed numbers so the pictures are stable; the live tests
check the same screens against the real daemon. Update with `pytest --snapshot-update`.
"""

from __future__ import annotations

import grpc
import pytest
from tui_fakes import fake_console, fake_console_at, wait_for

from xsched_tui.records import LinkState

SIZE = (170, 40)


async def loaded(pilot) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.table.row_count == 4, 10, "the recorded XQueues")
    await wait_for(pilot, lambda: not app._panels_stale and not app._kv_stale, 5, "panels")
    await pilot.pause(0.6)  # one panel tick with the selection in place


def test_main_screen_shows_queues_policy_latency_kv_and_devices(snap_compare, fake_control):
    assert snap_compare(fake_console(), terminal_size=SIZE, run_before=loaded)


def test_help_screen_lists_every_binding(snap_compare, fake_control):
    async def run_before(pilot) -> None:
        await loaded(pilot)
        await pilot.press("question_mark")

    assert snap_compare(fake_console(), terminal_size=SIZE, run_before=run_before)


def test_policy_picker_lists_every_policy(snap_compare, fake_control):
    async def run_before(pilot) -> None:
        await loaded(pilot)
        await pilot.press("p")

    assert snap_compare(fake_console(), terminal_size=SIZE, run_before=run_before)


def test_hint_dialog_refuses_an_out_of_range_value(snap_compare, fake_control):
    async def run_before(pilot) -> None:
        await loaded(pilot)
        await pilot.press("h", "1", "2", "0", "enter")

    assert snap_compare(fake_console(), terminal_size=SIZE, run_before=run_before)
    assert not any(name == "SendHint" for name, _ in fake_control.calls)


def test_config_dialog(snap_compare, fake_control):
    async def run_before(pilot) -> None:
        await loaded(pilot)
        await pilot.press("c")

    assert snap_compare(fake_console(), terminal_size=SIZE, run_before=run_before)


def test_a_refusal_from_the_daemon_is_a_notification_not_a_traceback(snap_compare, fake_control):
    fake_control.refuse["SetPolicy"] = (grpc.StatusCode.PERMISSION_DENIED,
                                        "uid 1000 may not change the policy")

    async def run_before(pilot) -> None:
        await loaded(pilot)
        await pilot.press("p", "down", "enter")
        await wait_for(pilot, lambda: any(n == "SetPolicy" for n, _ in fake_control.calls), 5)
        await pilot.pause(0.3)

    assert snap_compare(fake_console(), terminal_size=SIZE, run_before=run_before)


def test_daemon_down_screen_says_why(snap_compare):
    app = fake_console_at("unix:/nonexistent/xsched-tui/xschedd.sock",
                          backoff_min_s=60, backoff_max_s=60)

    async def run_before(pilot) -> None:
        await wait_for(pilot, lambda: app.connection.state is LinkState.DOWN, 10, "daemon down")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_a_silent_daemon_is_shown_in_the_header_over_the_last_known_state(snap_compare,
                                                                          fake_control):
    fake_control.snapshot.heartbeat_ms = 100  # and the fake never beats: silent at 0.3 s
    app = fake_console()

    async def run_before(pilot) -> None:
        await loaded(pilot)
        await wait_for(pilot, lambda: app.connection.state is LinkState.SILENT, 5, "silent")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


@pytest.mark.asyncio
async def test_refusals_are_notified_with_the_code_and_the_daemons_reason(fake_control):
    fake_control.refuse["SuspendXQueue"] = (grpc.StatusCode.PERMISSION_DENIED,
                                            "XQueue 0x1 belongs to uid 0")
    app = fake_console()
    seen: list[tuple[str, str]] = []
    original = app.notify

    def notify(message, *args, **kwargs):
        seen.append((str(message), kwargs.get("severity", "information")))
        return original(message, *args, **kwargs)

    app.notify = notify  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("s")
        await wait_for(pilot, lambda: seen, 5, "a notification")
        assert app.is_running
    assert seen[-1] == ("suspend refused: PERMISSION_DENIED: XQueue 0x1 belongs to uid 0", "error")
