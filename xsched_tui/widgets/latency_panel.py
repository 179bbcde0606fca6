"""The latency panel: P50/P99 history (sparklines) of the selected XQueue."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline

from xsched_tui.records import LatencyHistory, XQueueRow


class LatencyPanel(Vertical):
    DEFAULT_CSS = """
    LatencyPanel { border: round $primary; padding: 0 1; }
    LatencyPanel Sparkline { height: 3; }
    LatencyPanel Label { height: 1; width: 1fr; }
    LatencyPanel #p99-line { color: $warning; }
    """

    def compose(self) -> ComposeResult:
        yield Label("no XQueue selected", id="latency-title")
        yield Label("P50", id="p50-label")
        yield Sparkline([], id="p50-line")
        yield Label("P99", id="p99-label")
        yield Sparkline([], id="p99-line")

    def on_mount(self) -> None:
        self.border_title = "latency"

    def show(self, row: XQueueRow | None, history: LatencyHistory | None) -> None:
        title = self.query_one("#latency-title", Label)
        p50 = self.query_one("#p50-line", Sparkline)
        p99 = self.query_one("#p99-line", Sparkline)
        if row is None or history is None:
            title.update("no XQueue selected", layout=False)
            p50.data, p99.data = [], []
            return
        lat = row.latency
        # fixed-size labels: repaint only, no layout pass on every update
        title.update(
            f"{row.name or row.id_text} (pid {row.pid}, {lat.kind} spans, n={lat.count})",
            layout=False,
        )
        self.query_one("#p50-label", Label).update(f"P50 {lat.p50_ms:.2f} ms", layout=False)
        self.query_one("#p99-label", Label).update(f"P99 {lat.p99_ms:.2f} ms", layout=False)
        if list(history.p50_ms) != p50.data:
            p50.data = list(history.p50_ms)
        if list(history.p99_ms) != p99.data:
            p99.data = list(history.p99_ms)
