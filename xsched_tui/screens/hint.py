"""The hint dialog: utilization, timeslice, deadline, laxity, window-active (and priority).

Input is validated in the dialog (xsched_tui.forms): a bad value keeps the dialog open and
shows the reason; only a valid HintRequest leaves it.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Switch

from xsched_tui.forms import FormError, HintKind, HintRequest, build_hint
from xsched_tui.records import XQueueRow


class HintDialog(ModalScreen[HintRequest | None]):
    BINDINGS = [Binding("escape", "cancel", "cancel")]
    DEFAULT_CSS = """
    HintDialog { align: center middle; }
    HintDialog > Vertical { width: 64; height: auto; border: thick $primary;
                            background: $surface; padding: 1 2; }
    HintDialog .row { height: auto; }
    HintDialog .row Label { width: 16; padding-top: 1; }
    HintDialog .row Input { width: 1fr; }
    HintDialog #hint-error { color: $error; height: auto; }
    HintDialog #buttons { height: auto; align-horizontal: right; }
    """

    def __init__(self, row: XQueueRow, kind: HintKind = HintKind.UTILIZATION) -> None:
        super().__init__()
        self.row = row
        self.initial_kind = kind

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"hint for [b]{self.row.name or self.row.id_text}[/b] "
                        f"(XQueue {self.row.id_text}, pid {self.row.pid})")
            yield Select([(k.value, k) for k in HintKind], value=self.initial_kind,
                         allow_blank=False, id="hint-kind")
            with Horizontal(classes="row", id="value-row"):
                yield Label("value", id="value-label")
                yield Input(placeholder="", id="hint-value")
            with Horizontal(classes="row", id="lax-row"):
                yield Label("lax / crit prio")
                yield Input(placeholder="lax priority (0)", id="lax-priority")
                yield Input(placeholder=f"crit priority ({self.row.priority})", id="crit-priority")
            with Horizontal(classes="row", id="active-row"):
                yield Label("window active")
                yield Switch(value=True, id="hint-active")
            yield Label("", id="hint-error")
            with Horizontal(id="buttons"):
                yield Button("send", variant="primary", id="send")
                yield Button("cancel", id="cancel")

    def on_mount(self) -> None:
        self._show_fields(self.initial_kind)
        self.query_one("#hint-value", Input).focus()

    @property
    def kind(self) -> HintKind:
        return self.query_one("#hint-kind", Select).value  # type: ignore[return-value]

    def _show_fields(self, kind: HintKind) -> None:
        self.query_one("#value-row").display = kind is not HintKind.WINDOW_ACTIVE
        self.query_one("#lax-row").display = kind is HintKind.LAXITY
        self.query_one("#active-row").display = kind is HintKind.WINDOW_ACTIVE
        self.query_one("#value-label", Label).update(kind.value)
        self.query_one("#hint-value", Input).placeholder = kind.unit
        self.query_one("#hint-error", Label).update("")

    def on_select_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, HintKind):
            self._show_fields(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "send":
            self.submit()
        else:
            self.dismiss(None)

    def submit(self) -> None:
        try:
            req = build_hint(
                self.kind,
                self.row,
                value=self.query_one("#hint-value", Input).value,
                lax_priority=self.query_one("#lax-priority", Input).value,
                crit_priority=self.query_one("#crit-priority", Input).value,
                active=self.query_one("#hint-active", Switch).value,
            )
        except FormError as exc:
            self.query_one("#hint-error", Label).update(f"refused: {exc}")
            return
        self.dismiss(req)

    def action_cancel(self) -> None:
        self.dismiss(None)
