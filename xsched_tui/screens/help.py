"""The help screen: every key binding of the console, from the same table the footer uses."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "dismiss", "close"),
        Binding("question_mark", "dismiss", "close", show=False),
        Binding("q", "dismiss", "close", show=False),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 72; height: auto; max-height: 90%; border: thick $primary;
                            background: $surface; padding: 1 2; }
    HelpScreen DataTable { height: auto; max-height: 30; }
    """

    def __init__(self, bindings: list[tuple[str, str]], notes: list[str]) -> None:
        super().__init__()
        self._keys = bindings
        self._notes = notes

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]xsched-tui keys[/b]  (esc closes)")
            table = DataTable(show_cursor=False, id="help-keys")
            table.add_columns("key", "action")
            for key, text in self._keys:
                table.add_row(key, text)
            yield table
            for note in self._notes:
                yield Label(note)

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)
