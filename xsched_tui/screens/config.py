"""The configure dialog: an XQueue's preemption level, threshold and batch size."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from xsched_tui.forms import ConfigRequest, FormError, build_config
from xsched_tui.records import XQueueRow


class ConfigDialog(ModalScreen[ConfigRequest | None]):
    BINDINGS = [Binding("escape", "cancel", "cancel")]
    DEFAULT_CSS = """
    ConfigDialog { align: center middle; }
    ConfigDialog > Vertical { width: 60; height: auto; border: thick $primary;
                              background: $surface; padding: 1 2; }
    ConfigDialog .row { height: auto; }
    ConfigDialog .row Label { width: 14; padding-top: 1; }
    ConfigDialog #config-error { color: $error; height: auto; }
    ConfigDialog #buttons { height: auto; align-horizontal: right; }
    """

    def __init__(self, row: XQueueRow) -> None:
        super().__init__()
        self.row = row

    def compose(self) -> ComposeResult:
        r = self.row
        with Vertical():
            yield Label(f"configure [b]{r.name or r.id_text}[/b] (XQueue {r.id_text})")
            for key, label, value, hint in (
                ("level", "level", r.level, "1 block, 2 deactivate, 3 interrupt"),
                ("threshold", "threshold", r.threshold, "max in-flight commands, >= 1"),
                ("batch", "batch size", r.batch_size, "1 .. threshold"),
            ):
                with Horizontal(classes="row"):
                    yield Label(label)
                    yield Input(str(value), placeholder=hint, id=f"cfg-{key}")
            yield Label("", id="config-error")
            with Horizontal(id="buttons"):
                yield Button("apply", variant="primary", id="apply")
                yield Button("cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cfg-level", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "apply":
            self.submit()
        else:
            self.dismiss(None)

    def submit(self) -> None:
        try:
            req = build_config(
                self.row,
                self.query_one("#cfg-level", Input).value,
                self.query_one("#cfg-threshold", Input).value,
                self.query_one("#cfg-batch", Input).value,
            )
        except FormError as exc:
            self.query_one("#config-error", Label).update(f"refused: {exc}")
            return
        self.dismiss(req)

    def action_cancel(self) -> None:
        self.dismiss(None)
