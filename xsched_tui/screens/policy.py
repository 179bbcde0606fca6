"""The policy picker: every policy the daemon offers (PolicyInfo.available)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option


class PolicyPicker(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "cancel")]
    DEFAULT_CSS = """
    PolicyPicker { align: center middle; }
    PolicyPicker > Vertical { width: 40; height: auto; border: thick $primary;
                              background: $surface; padding: 1 2; }
    PolicyPicker OptionList { height: auto; max-height: 16; }
    """

    def __init__(self, available: tuple[str, ...], current: str) -> None:
        super().__init__()
        self.available = available
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"policy (now [b]{self.current}[/b]); enter picks, esc cancels")
            yield OptionList(
                *[Option(f"{'● ' if n == self.current else '  '}{n}", id=n) for n in self.available],
                id="policies",
            )

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if self.current in self.available:
            options.highlighted = self.available.index(self.current)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
