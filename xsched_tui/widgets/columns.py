"""The XQueue table's columns: label, width, alignment, how a row renders and how it sorts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xsched_tui.records import QueueState, XQueueRow

STATE_STYLE = {
    QueueState.READY: "bold green",
    QueueState.IDLE: "dim",
    QueueState.SUSPENDED: "bold yellow",
    QueueState.HELD: "bold red",
}
GAP = 2  # spaces between columns


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    text: Callable[[XQueueRow], str]
    sort_key: Callable[[XQueueRow], Any]
    right: bool = False  # numbers align right

    def cell(self, row: XQueueRow) -> str:
        return self.fit(self.text(row))

    def fit(self, value: str) -> str:
        value = value[: self.width]
        return value.rjust(self.width) if self.right else value.ljust(self.width)


def _ms(value: float) -> str:
    return f"{value:.2f}" if value else "-"


COLUMNS: tuple[Column, ...] = (
    Column("process", "PROCESS", 10, lambda r: r.process, lambda r: (r.process, r.pid)),
    Column("pid", "PID", 7, lambda r: str(r.pid), lambda r: r.pid, right=True),
    Column("device", "DEV", 5, lambda r: r.device, lambda r: r.device),
    Column("id", "XQUEUE", 16, lambda r: r.id_text, lambda r: r.xqueue_id),
    Column("name", "NAME", 12, lambda r: r.name, lambda r: r.name),
    Column("level", "LV", 2, lambda r: str(r.level), lambda r: r.level, right=True),
    Column("threshold", "THR", 4, lambda r: str(r.threshold), lambda r: r.threshold, right=True),
    Column("state", "STATE", 9, lambda r: r.state.value, lambda r: r.state.value),
    Column("in_flight", "INFL", 4, lambda r: str(r.in_flight), lambda r: r.in_flight, right=True),
    Column("pending", "PEND", 5, lambda r: str(r.pending), lambda r: r.pending, right=True),
    Column("done", "DONE/SUBMIT", 15, lambda r: f"{r.completed}/{r.submitted}",
           lambda r: r.submitted, right=True),
    Column("priority", "PRIO", 4, lambda r: str(r.priority), lambda r: r.priority, right=True),
    Column("p50", "P50 ms", 7, lambda r: _ms(r.latency.p50_ms), lambda r: r.latency.p50_ms, right=True),
    Column("p99", "P99 ms", 7, lambda r: _ms(r.latency.p99_ms), lambda r: r.latency.p99_ms, right=True),
    Column("share", "SHARE", 6, lambda r: f"{r.share * 100:.1f}%", lambda r: r.share, right=True),
    Column("hints", "HINTS", 30, lambda r: " ".join(r.hints), lambda r: r.hints),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
BY_KEY = {c.key: c for c in COLUMNS}
TOTAL_WIDTH = 1 + sum(c.width for c in COLUMNS) + GAP * (len(COLUMNS) - 1)


def column_at(x: int) -> Column | None:
    """The column under content x (0-based, before horizontal scrolling)."""
    pos = 1
    for col in COLUMNS:
        if pos <= x < pos + col.width + GAP:
            return col
        pos += col.width + GAP
    return None


def matches(row: XQueueRow, needle: str) -> bool:
    """The filter: a case-insensitive substring of process, pid, device, id, name, state."""
    if not needle:
        return True
    hay = f"{row.process} {row.pid} {row.device} {row.id_text} {row.name} {row.state.value}"
    return needle.lower() in hay.lower()
