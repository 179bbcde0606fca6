"""The XQueue table: a Line-API widget that renders only the rows on screen, by row key.

Textual's DataTable keys its cell cache on one table-wide update counter, so a single
`update_cell` re-renders every visible cell (about 0.3 ms each, measured): at 10 updates a
second that alone costs more than a core with a screenful of rows. Here each row's line is
cached against its immutable XQueueRow, and an update costs what is on screen: it reads
(so the store builds) only the rows in view, and re-renders only those that changed. The
order and the filter's verdict on rows already shown follow the live values at `resort()`
(the app calls it every second: a table re-sorting at 10 Hz cannot be read anyway); rows
that appear or go are placed at once. Owned by the app's event loop.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from xsched_tui.records import StatusChange, XQueueRow
from xsched_tui.widgets.columns import (
    BY_KEY,
    COLUMN_KEYS,
    COLUMNS,
    GAP,
    STATE_STYLE,
    TOTAL_WIDTH,
    column_at,
    matches,
)

HEADER_LINES = 1
_STATE_INDEX = COLUMN_KEYS.index("state")


class XQueueTable(ScrollView, can_focus=True):
    """See the module docstring. `show()` takes the store's rows and what changed."""

    COMPONENT_CLASSES = {"xqueue-table--header", "xqueue-table--cursor", "xqueue-table--sorted"}
    DEFAULT_CSS = """
    XQueueTable { height: 1fr; background: $surface; }
    XQueueTable > .xqueue-table--header { background: $panel; color: $foreground; text-style: bold; }
    XQueueTable > .xqueue-table--sorted { color: $accent; text-style: bold underline; }
    XQueueTable > .xqueue-table--cursor { background: $block-cursor-blurred-background; }
    XQueueTable:focus > .xqueue-table--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
    }
    """
    BINDINGS = [
        Binding("up", "cursor(-1)", "up", show=False),
        Binding("down", "cursor(1)", "down", show=False),
        Binding("pageup", "page(-1)", "page up", show=False),
        Binding("pagedown", "page(1)", "page down", show=False),
        Binding("home", "cursor_to(0)", "first", show=False),
        Binding("end", "cursor_to(-1)", "last", show=False),
    ]

    cursor_row: reactive[int] = reactive(0, always_update=True)

    class Highlighted(Message):
        """The cursor moved to another XQueue (or the table emptied: `xqueue_id` None)."""

        def __init__(self, xqueue_id: int | None) -> None:
            super().__init__()
            self.xqueue_id = xqueue_id

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rows_source: Mapping[int, XQueueRow] = {}
        self.filter_text = ""
        self.sort_column: str | None = "id"
        self.sort_reverse = False
        self._order: list[int] = []
        self._index: dict[int, int] = {}
        self._lines: dict[int, tuple[XQueueRow, bool, Strip]] = {}  # row strips by id
        self._header: tuple[str | None, bool, Strip] | None = None
        self._selected: int | None = None
        self._base_style = Style()
        self._cursor_style = Style()

    # -- what the app calls --------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self._order)

    @property
    def selected_id(self) -> int | None:
        return self._selected

    def shown_ids(self) -> list[int]:
        return list(self._order)

    def select_id(self, xqueue_id: int) -> None:
        if xqueue_id in self._index:
            self.cursor_row = self._index[xqueue_id]

    def show(self, rows: Mapping[int, XQueueRow], change: StatusChange) -> None:
        self.rows_source = rows
        if change.reset:
            self.rebuild()
            return
        for xid in change.removed_xqueues:
            self._lines.pop(xid, None)
        reorder = any(xid in self._index for xid in change.removed_xqueues)
        new = change.xqueues.difference(self._index)  # O(changed): dicts are special-cased
        if not reorder and new:
            reorder = any(xid in rows and self._matches(xid) for xid in new)
        if reorder:
            self._reorder()
            return
        changed = change.xqueues
        for index in self._visible_range():  # only the lines of changed rows on screen
            if self._order[index] in changed:
                self.refresh_line(index + HEADER_LINES)

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self._reorder()
        self.refresh()

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        if column not in BY_KEY:
            raise ValueError(f"no column {column!r}; columns are {', '.join(COLUMN_KEYS)}")
        if reverse is None:
            reverse = not self.sort_reverse if column == self.sort_column else False
        self.sort_column, self.sort_reverse = column, reverse
        self._reorder()
        self.refresh()  # the header's sort mark

    def resort(self) -> None:
        """Re-sort with the freshest records (sort keys such as latency move all the time)."""
        self._reorder()

    def rebuild(self) -> None:
        self._lines.clear()
        self._reorder()

    # -- order, cursor, scrolling --------------------------------------------------------
    def _matches(self, xid: int) -> bool:
        return not self.filter_text or matches(self.rows_source[xid], self.filter_text)

    def _reorder(self) -> None:
        rows = self.rows_source
        ids = [xid for xid in rows if self._matches(xid)] if self.filter_text else list(rows)
        key = self.sort_column or "id"
        if key == "id":  # the common case needs no row records at all
            ids.sort(reverse=self.sort_reverse)
        else:
            col = BY_KEY[key]
            ids.sort(key=lambda xid: (col.sort_key(rows[xid]), xid), reverse=self.sort_reverse)
        if ids == self._order:
            return
        self._order = ids
        self._index = {xid: i for i, xid in enumerate(ids)}
        self.virtual_size = Size(TOTAL_WIDTH, len(ids) + HEADER_LINES)
        if self._selected in self._index:
            self.cursor_row = self._index[self._selected]
        else:
            self.cursor_row = min(self.cursor_row, max(len(ids) - 1, 0))
        self.refresh()

    def validate_cursor_row(self, value: int) -> int:
        return max(0, min(value, len(self._order) - 1)) if self._order else 0

    def watch_cursor_row(self, value: int) -> None:
        selected = self._order[value] if self._order else None
        if selected != self._selected:
            self._selected = selected
            self.post_message(self.Highlighted(selected))
        self._scroll_to_cursor()
        self.refresh()

    def _scroll_to_cursor(self) -> None:
        body = self._body_height
        top = int(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + body:
            self.scroll_to(y=self.cursor_row - body + 1, animate=False)

    @property
    def _body_height(self) -> int:
        """Rows in view: the content height less the header and any horizontal scrollbar."""
        return max(self.scrollable_content_region.height - HEADER_LINES, 1)

    def _visible_range(self) -> range:
        top = int(self.scroll_y)
        return range(top, min(top + self._body_height, len(self._order)))

    def action_cursor(self, step: int) -> None:
        self.cursor_row += step

    def action_page(self, direction: int) -> None:
        self.cursor_row += direction * max(self._body_height - 1, 1)

    def action_cursor_to(self, index: int) -> None:
        self.cursor_row = index if index >= 0 else len(self._order) - 1

    def on_click(self, event: events.Click) -> None:
        if event.y < HEADER_LINES:
            col = column_at(event.x + int(self.scroll_x))
            if col is not None:
                self.sort_by(col.key)
        else:
            self.cursor_row = int(self.scroll_y) + event.y - HEADER_LINES

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self.refresh()

    # -- rendering -----------------------------------------------------------------------
    def render_lines(self, crop):
        # styles once per paint, not once per line (rich_style walks the DOM)
        self._base_style = self.rich_style
        self._cursor_style = self._base_style + self.get_component_rich_style("xqueue-table--cursor")
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self._base_style
        if y < HEADER_LINES:
            strip = self._header_strip(base)
        else:
            index = int(self.scroll_y) + y - HEADER_LINES
            if index >= len(self._order):
                return Strip.blank(width, base)
            strip = self._row_strip(self._order[index], index == self.cursor_row, base)
        x = int(self.scroll_x)
        return strip.crop_extend(x, x + width, base)  # cached on the (cached) row strip

    def _header_strip(self, base: Style) -> Strip:
        key = (self.sort_column, self.sort_reverse)
        if self._header is not None and self._header[:2] == key:
            return self._header[2]
        style = base + self.get_component_rich_style("xqueue-table--header")
        sorted_style = style + self.get_component_rich_style("xqueue-table--sorted")
        segments = [Segment(" ", style)]
        for i, col in enumerate(COLUMNS):
            label = col.label + (("▼" if self.sort_reverse else "▲") if col.key == self.sort_column else "")
            segments.append(Segment(col.fit(label), sorted_style if col.key == self.sort_column else style))
            if i < len(COLUMNS) - 1:
                segments.append(Segment(" " * GAP, style))
        strip = Strip(segments).extend_cell_length(TOTAL_WIDTH, style)
        self._header = (key[0], key[1], strip)
        return strip

    def _row_strip(self, xid: int, cursor: bool, base: Style) -> Strip:
        row = self.rows_source.get(xid)
        if row is None:
            return Strip.blank(TOTAL_WIDTH, base)
        cached = self._lines.get(xid)
        if cached is not None and cached[0] is row and cached[1] == cursor:
            return cached[2]
        style = self._cursor_style if cursor else base
        cells = [col.cell(row) for col in COLUMNS]
        gap = " " * GAP
        before = " " + gap.join(cells[:_STATE_INDEX]) + gap
        after = gap + gap.join(cells[_STATE_INDEX + 1:])
        state_style = style if cursor else style + Style.parse(STATE_STYLE[row.state])
        strip = Strip([
            Segment(before, style), Segment(cells[_STATE_INDEX], state_style), Segment(after, style)
        ], TOTAL_WIDTH)
        self._lines[xid] = (row, cursor, strip)
        return strip
