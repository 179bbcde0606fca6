"""Messages the watch worker posts to the app (the worker and the app share one event loop)."""

from __future__ import annotations

from textual.message import Message

from xsched_tui.devices import DevicesView
from xsched_tui.records import Connection


class StatusChanged(Message):
    """The store changed; the app takes the merged StatusChange it has pending."""


class LinkChanged(Message):
    def __init__(self, connection: Connection) -> None:
        super().__init__()
        self.connection = connection


class DevicesSampled(Message):
    def __init__(self, view: DevicesView) -> None:
        super().__init__()
        self.view = view
