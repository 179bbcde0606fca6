"""The console's header line: the policy and gang mode, the connection state, and how much
is watched."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from xsched_tui.records import Connection, LinkState, PolicyRow

LINK_STYLE = {
    LinkState.CONNECTED: "bold green",
    LinkState.CONNECTING: "bold yellow",
    LinkState.SILENT: "bold dark_orange",
    LinkState.DOWN: "bold red",
}


class StatusHeader(Static):
    DEFAULT_CSS = """
    StatusHeader { height: 1; background: $panel; color: $text; padding: 0 1; }
    """

    connection: reactive[Connection | None] = reactive(None)
    policy: reactive[PolicyRow] = reactive(PolicyRow)
    counts: reactive[tuple[int, int]] = reactive((0, 0))  # XQueues, processes

    def render(self) -> Text:
        text = Text.assemble(("xsched-tui", "bold"), "  policy ")
        text.append(self.policy.name, style="bold cyan")
        if self.policy.available:  # known only from a daemon
            if self.policy.gang:
                text.append("  gang on", style="bold magenta")
            else:
                text.append("  gang off", style="dim")
        if self.policy.global_hints:
            text.append("  " + " ".join(self.policy.global_hints), style="cyan")
        text.append("  │  ")
        conn = self.connection
        if conn is None:
            text.append("○ starting", style="dim")
        else:
            text.append(f"● {conn.state.value}", style=LINK_STYLE[conn.state])
            text.append(f" {conn.target}")
            if conn.state is LinkState.DOWN:
                text.append(f": {conn.reason} (retry {conn.attempt})", style="red")
            elif conn.state is LinkState.SILENT:
                text.append(f": {conn.reason}", style="dark_orange")
        xqueues, procs = self.counts
        text.append(f"  │  {xqueues} XQueues, {procs} processes")
        text.append(f"  │  decisions {self.policy.decisions}", style="dim")
        return text
