"""xsched-tui: the operator console of xschedd (Textual), fed by WatchStatus only.

One worker consumes the watch feed (xsched_tui.client), applies it to the store and posts
StatusChanged; handlers render the store's immutable records. Actions go through the same
client and show the daemon's refusals as notifications.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from functools import partial, wraps
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Label

from xsched_tui.client import ControlClient, ControlError, LinkEvent
from xsched_tui.connection import Target, TargetError, resolve_target
from xsched_tui.devices import DeviceSource, DevicesView
from xsched_tui.forms import ConfigRequest, FormError, HintRequest, step_priority
from xsched_tui.messages import DevicesSampled, LinkChanged, StatusChanged
from xsched_tui.records import Connection, LinkState, StatusChange, XQueueRow
from xsched_tui.screens.config import ConfigDialog
from xsched_tui.screens.help import HelpScreen
from xsched_tui.screens.hint import HintDialog
from xsched_tui.screens.policy import PolicyPicker
from xsched_tui.store import StatusStore
from xsched_tui.widgets.columns import COLUMN_KEYS
from xsched_tui.widgets.device_panel import DevicePanel
from xsched_tui.widgets.header import StatusHeader
from xsched_tui.widgets.kv_panel import KvPanel
from xsched_tui.widgets.latency_panel import LatencyPanel
from xsched_tui.widgets.xqueue_table import XQueueTable

DEVICE_SAMPLE_S = 1.0
RESORT_S = 1.0
PANEL_S = 0.5


def while_mounted(handler):
    """Skip a timer tick or message that lands while the app shuts down.

    Textual removes the screen's widgets before it stops the app's timers and message
    queue, so a late tick would find no table (NoMatches); there is nothing left to show."""

    @wraps(handler)
    def guarded(self, *args):
        try:
            return handler(self, *args)
        except NoMatches:
            return None

    return guarded


BINDINGS: list[Binding] = [
    Binding("p", "pick_policy", "policy", tooltip="pick the scheduling policy"),
    Binding("plus,equals_sign", "priority(1)", "prio+", key_display="+",
            tooltip="raise the selected XQueue's priority"),
    Binding("minus", "priority(-1)", "prio-", key_display="-",
            tooltip="lower the selected XQueue's priority"),
    Binding("h", "hint", "hint", tooltip="send a hint about the selected XQueue"),
    Binding("c", "configure", "config", tooltip="level / threshold / batch size"),
    Binding("s", "suspend", "suspend", tooltip="hold the selected XQueue suspended"),
    Binding("r", "resume", "resume", tooltip="release an operator hold"),
    Binding("g", "toggle_gang", "gang", tooltip="gang mode on/off: a process's XQueues run together"),
    Binding("slash", "focus_filter", "filter", key_display="/", tooltip="filter the table"),
    Binding("o", "next_sort", "sort", tooltip="sort by the next column"),
    Binding("v", "reverse_sort", "reverse", tooltip="reverse the sort order"),
    Binding("question_mark,f1", "help", "help", key_display="?", tooltip="all keys"),
    Binding("q", "quit", "quit", tooltip="quit"),
]

HELP_NOTES = [
    "ctrl+p opens the command palette: every action, each policy.",
    "Click a column header to sort by it. Esc leaves the filter.",
    "Order and filter follow the live values once a second.",
    "SHARE: the part of the last {window} the XQueue could run",
    "  (ready and not suspended), as xschedd measures it.",
    "State: ready / idle / suspended (policy) / held (operator).",
    "Header: policy, gang mode, link (silent: no heartbeat lately).",
]


def help_rows() -> list[tuple[str, str]]:
    rows = [(b.key_display or b.key.split(",")[0], b.tooltip or b.description) for b in BINDINGS]
    return rows + [("ctrl+p", "command palette")]


class XSchedConsole(App[None]):
    """The console; `target` says where xschedd is (see xsched_tui.connection)."""

    TITLE = "xsched-tui"
    BINDINGS = BINDINGS
    CSS = """
    #main { height: 1fr; }
    #panels { height: 12; }
    #panels > * { width: 1fr; height: 100%; }
    #filter { height: 3; border: round $secondary; }
    #empty { padding: 1 2; color: $text-muted; }
    """

    def __init__(
        self,
        target: Target,
        watch_interval_ms: int = 0,
        devices: DeviceSource | None = None,
        client: ControlClient | None = None,
    ) -> None:
        super().__init__()
        self.target = target
        self.client = client or ControlClient(target, watch_interval_ms=watch_interval_ms)
        self.store = StatusStore()
        self.connection = Connection(LinkState.CONNECTING, target.label)
        self._devices = devices if devices is not None else DeviceSource()
        self._pending: StatusChange | None = None
        self._touched_since_sort = False
        self._panels_stale = False
        self._kv_stale = False
        # priorities sent but not seen back yet: quick +/+/+ presses build on each other
        self._priority_sent: dict[int, int] = {}

    # -- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusHeader(id="header")
        with Vertical(id="main"):
            yield Input(placeholder="filter: process, pid, device, XQueue id, name, state",
                        id="filter")
            yield Label("connecting…", id="empty")
            yield XQueueTable(id="xqueues")
        with Horizontal(id="panels"):
            yield LatencyPanel(id="latency")
            yield KvPanel(id="kv")
            yield DevicePanel(id="devices")
        yield Footer()

    @property
    def table(self) -> XQueueTable:
        return self.query_one(XQueueTable)

    def on_mount(self) -> None:
        self.query_one(StatusHeader).connection = self.connection
        self.table.focus()
        self.watch_status()
        self.sample_devices()
        if self._devices.available:
            self.set_interval(DEVICE_SAMPLE_S, self.sample_devices)
        self.set_interval(RESORT_S, self._periodic_resort)
        self.set_interval(PANEL_S, self._refresh_panels)

    async def on_unmount(self) -> None:
        await self.client.close()
        self._devices.close()

    # -- the watch worker ----------------------------------------------------------------
    @work(exclusive=True, group="watch", exit_on_error=False)
    async def watch_status(self) -> None:
        async for event in self.client.feed():
            if isinstance(event, LinkEvent):
                if event.connection.state is LinkState.DOWN:
                    self._queue_change(self.store.clear())
                self.post_message(LinkChanged(event.connection))
            else:
                self._queue_change(self.store.apply(event.update))

    def _queue_change(self, change: StatusChange) -> None:
        if not change:
            return
        if self._pending is None:
            self._pending = change
            self.post_message(StatusChanged())
        else:
            self._pending = self._pending.merge(change)

    @while_mounted
    def on_status_changed(self, _: StatusChanged) -> None:
        change, self._pending = self._pending, None
        if change is None:
            return
        table = self.table
        store = self.store
        table.show(store.xqueues, change)
        for xid, prio in list(self._priority_sent.items()):
            row = store.xqueues.get(xid)
            if row is None or row.priority == prio:
                del self._priority_sent[xid]
        self._touched_since_sort = True
        header = self.query_one(StatusHeader)
        header.policy = store.policy
        header.counts = (len(store.xqueues), len(store.processes))
        selected = table.selected_id
        if change.reset or selected in change.xqueues or selected in change.removed_xqueues:
            self._panels_stale = True
        if change.reset or change.processes or change.removed_pids:
            self._kv_stale = True
        if change.reset or change.removed_xqueues:
            self.query_one(DevicePanel).show_xpus(store.devices())
        self._update_empty()

    @while_mounted
    def _refresh_panels(self) -> None:
        """The side panels follow at PANEL_S: history needs no 10 Hz repaint, the table does."""
        if self._panels_stale:
            self._panels_stale = False
            self._show_latency()
            self.query_one(DevicePanel).show_xpus(self.store.devices())
        if self._kv_stale:
            self._kv_stale = False
            self.query_one(KvPanel).show(self.store.kv_processes())

    @while_mounted
    def on_link_changed(self, message: LinkChanged) -> None:
        self.connection = message.connection
        self.query_one(StatusHeader).connection = message.connection
        self._update_empty()

    def _update_empty(self) -> None:
        empty = self.query_one("#empty", Label)
        conn = self.connection
        if conn.state is LinkState.DOWN:
            empty.update(f"daemon down at {conn.target}: {conn.reason}; reconnecting…")
        elif conn.state is LinkState.CONNECTING and not self.store.xqueues:
            empty.update(f"connecting to {conn.target}…")
        elif not self.table.row_count:
            empty.update(
                "no XQueues match the filter" if self.table.filter_text
                else "no XQueues yet: run a workload with XSCHED_SCHEDULER=GLB"
            )
        empty.display = conn.state is LinkState.DOWN or not self.table.row_count

    @while_mounted
    def _periodic_resort(self) -> None:
        if self._touched_since_sort:
            self._touched_since_sort = False
            self.table.resort()

    # -- devices -------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="devices", exit_on_error=False)
    def sample_devices(self) -> None:
        self.post_message(DevicesSampled(self._devices.sample()))

    @while_mounted
    def on_devices_sampled(self, message: DevicesSampled) -> None:
        self.query_one(DevicePanel).show_gpus(message.view)

    # -- selection -----------------------------------------------------------------------
    def on_xqueue_table_highlighted(self, _: XQueueTable.Highlighted) -> None:
        self._show_latency()

    def _show_latency(self) -> None:
        xid = self.table.selected_id
        row = self.store.xqueues.get(xid) if xid is not None else None
        self.query_one(LatencyPanel).show(row, self.store.history(xid) if row else None)

    def selected_row(self) -> XQueueRow | None:
        xid = self.table.selected_id
        row = self.store.xqueues.get(xid) if xid is not None else None
        if row is None:
            self.notify("select an XQueue first", severity="warning")
        return row

    # -- filter and sort -----------------------------------------------------------------
    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.table.set_filter(event.value)
            self._update_empty()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self.table.focus()

    def on_key(self, event) -> None:
        if event.key == "escape" and self.focused is self.query_one("#filter", Input):
            self.table.focus()
            event.stop()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_next_sort(self) -> None:
        current = self.table.sort_column
        i = COLUMN_KEYS.index(current) + 1 if current in COLUMN_KEYS else 0
        self.table.sort_by(COLUMN_KEYS[i % len(COLUMN_KEYS)], reverse=False)
        self.notify(f"sorted by {self.table.sort_column}", timeout=1.5)

    def action_reverse_sort(self) -> None:
        self.table.sort_by(self.table.sort_column or "id", reverse=not self.table.sort_reverse)

    def action_help(self) -> None:
        window = self.store.share_window_s
        notes = [n.format(window=f"{window:g} s" if window else "seconds") for n in HELP_NOTES]
        self.push_screen(HelpScreen(help_rows(), notes))

    # -- actions that reach the daemon ---------------------------------------------------
    def _act(
        self,
        call: Callable[[], Awaitable[object]],
        done: Callable[[object], str],
        failed: Callable[[], object] | None = None,
    ) -> None:
        """Run one control call in a worker; a refusal becomes an error notification."""

        async def run() -> None:
            try:
                result = await call()
            except ControlError as exc:
                if failed is not None:
                    failed()
                self.notify(f"{exc.action} refused: {exc.code}: {exc.details}",
                            title="xschedd", severity="error", timeout=8)
                return
            self.notify(done(result), timeout=3)

        self.run_worker(run(), group="actions", exit_on_error=False)

    def action_pick_policy(self) -> None:
        available = self.store.policy.available
        if not available:
            self.notify("no policy list yet: the daemon is not connected", severity="warning")
            return
        self.push_screen(PolicyPicker(available, self.store.policy.name), self.set_policy)

    def set_policy(self, name: str | None) -> None:
        if name:
            self._act(partial(self.client.set_policy, name), lambda info: f"policy is now {info.name}")

    def action_toggle_gang(self) -> None:
        if not self.store.policy.available:
            self.notify("gang mode: the daemon is not connected", severity="warning")
            return
        self._act(
            partial(self.client.set_policy, "", not self.store.policy.gang),
            lambda info: "gang mode on: all XQueues of a process run or wait together"
            if info.gang else "gang mode off: each XQueue is scheduled on its own",
        )

    def action_priority(self, step: int) -> None:
        row = self.selected_row()
        if row is None:
            return
        base = self._priority_sent.get(row.xqueue_id, row.priority)
        try:
            hint = step_priority(replace(row, priority=base), step)
        except FormError as exc:
            self.notify(str(exc), severity="warning")
            return
        self._priority_sent[row.xqueue_id] = hint.priority
        self._act(partial(self.client.send_hint, hint),
                  lambda _: f"{row.name or row.id_text}: priority {hint.priority}",
                  failed=lambda: self._priority_sent.pop(row.xqueue_id, None))

    def action_hint(self) -> None:
        row = self.selected_row()
        if row is not None:
            self.push_screen(HintDialog(row), self._send_hint)

    def _send_hint(self, req: HintRequest | None) -> None:
        if req is not None:
            self._act(partial(self.client.send_hint, req.hint, req.pid),
                      lambda ids: f"hint sent ({type(req.hint).__name__})")

    def action_configure(self) -> None:
        row = self.selected_row()
        if row is not None:
            self.push_screen(ConfigDialog(row), self._configure)

    def _configure(self, req: ConfigRequest | None) -> None:
        if req is not None:
            self._act(
                partial(self.client.configure, req.xqueue_id, req.level, req.threshold, req.batch_size),
                lambda view: f"configured {view.info.xqueue_id:#x}: level {view.info.level}, "
                f"threshold {view.info.threshold}, batch {view.info.batch_size}",
            )

    def action_suspend(self) -> None:
        row = self.selected_row()
        if row is not None:
            self._act(partial(self.client.suspend, row.xqueue_id), lambda _: f"held {row.id_text}")

    def action_resume(self) -> None:
        row = self.selected_row()
        if row is not None:
            self._act(partial(self.client.resume, row.xqueue_id), lambda _: f"released {row.id_text}")

    # -- command palette -----------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Change policy…", "Pick the scheduling policy", self.action_pick_policy)
        for name in self.store.policy.available:
            yield SystemCommand(f"Policy: {name}", f"Switch xschedd to {name}",
                                partial(self.set_policy, name))
        yield SystemCommand("Raise priority", "Selected XQueue's priority +1",
                            partial(self.action_priority, 1))
        yield SystemCommand("Lower priority", "Selected XQueue's priority -1",
                            partial(self.action_priority, -1))
        yield SystemCommand("Send hint…", "Utilization, timeslice, deadline, laxity, window",
                            self.action_hint)
        yield SystemCommand("Configure XQueue…", "Level, threshold, batch size",
                            self.action_configure)
        yield SystemCommand("Suspend XQueue", "Hold the selected XQueue suspended",
                            self.action_suspend)
        yield SystemCommand("Resume XQueue", "Release an operator hold", self.action_resume)
        gang = "off" if self.store.policy.gang else "on"
        yield SystemCommand(f"Gang mode {gang}", "Schedule all XQueues of a process together"
                            if gang == "on" else "Schedule each XQueue on its own",
                            self.action_toggle_gang)
        yield SystemCommand("Filter XQueues", "Focus the filter input", self.action_focus_filter)
        yield SystemCommand("Sort by next column", "Cycle the sort column", self.action_next_sort)
        yield SystemCommand("Keys", "Show every key binding", self.action_help)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xsched-tui",
        description="The operator console of xschedd: live XQueues, latency, KV cache, devices; "
        "change policy and hints from the keyboard.",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--socket", type=Path, help="xschedd's Unix socket (default: as xschedd)")
    where.add_argument("--connect", metavar="HOST:PORT", help="xschedd over TCP")
    p.add_argument("--interval-ms", type=int, default=0,
                   help="the watch stream's minimum interval (0: the daemon's default)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.interval_ms < 0:
        parser.error(f"--interval-ms must be >= 0, got {args.interval_ms}")
    try:
        target = resolve_target(args.socket, args.connect)
    except TargetError as exc:
        parser.error(str(exc))
    XSchedConsole(target, watch_interval_ms=args.interval_ms).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
