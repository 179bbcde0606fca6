"""KV-cache usage bars, one per process that reports kv_blocks_used / kv_blocks_total gauges."""

from __future__ import annotations

from textual.containers import Horizontal, Vertical
from textual.widgets import Label, ProgressBar

from xsched_tui.records import ProcessRow


class KvBar(Horizontal):
    DEFAULT_CSS = """
    KvBar { height: 1; }
    KvBar Label { width: 28; height: 1; }
    KvBar ProgressBar { width: 1fr; }
    KvBar ProgressBar Bar { width: 1fr; }
    KvBar ProgressBar PercentageStatus { width: 5; }
    """

    def __init__(self, proc: ProcessRow) -> None:
        super().__init__(id=f"kv-{proc.pid}")
        self.pid = proc.pid
        self._label = Label("")
        self._bar = ProgressBar(total=1, show_eta=False, show_percentage=True)
        self._proc = proc

    def compose(self):
        yield self._label
        yield self._bar

    def on_mount(self) -> None:
        self.update_from(self._proc)

    def update_from(self, proc: ProcessRow) -> None:
        used, total = proc.kv_blocks or (0.0, 1.0)
        self._label.update(f"{proc.name[:10]} {proc.pid} {int(used)}/{int(total)}", layout=False)
        self._bar.update(total=total, progress=used)
        self.tooltip = f"{int(used)}/{int(total)} KV blocks"


class KvPanel(Vertical):
    DEFAULT_CSS = """
    KvPanel { border: round $primary; padding: 0 1; }
    """

    def on_mount(self) -> None:
        self.border_title = "KV cache"
        self.mount(Label("no process reports KV usage", id="kv-empty"))

    def show(self, procs: list[ProcessRow]) -> None:
        wanted = {p.pid: p for p in procs}
        for bar in list(self.query(KvBar)):
            if bar.pid not in wanted:
                bar.remove()
        have = {bar.pid: bar for bar in self.query(KvBar)}
        for pid, proc in wanted.items():
            if pid in have:
                have[pid].update_from(proc)
            else:
                self.mount(KvBar(proc))
        self.query_one("#kv-empty", Label).display = not wanted
