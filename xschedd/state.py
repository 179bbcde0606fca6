"""What survives a daemon restart: the policy, gang mode and hints, in one JSON file.

Writes are atomic (temporary file, fsync, rename, fsync of the directory), so a crash
leaves either the old state or the new one, never half of either.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from xschedd.policy import hints as H
from xschedd.policy.errors import PolicyError

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
VERSION = 1

HINT_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        H.PriorityHint,
        H.UtilizationHint,
        H.ProcessUtilizationHint,
        H.TimesliceHint,
        H.DeadlineHint,
        H.KDeadlineHint,
        H.LaxityHint,
        H.WindowActiveHint,
    )
}


@dataclass(frozen=True)
class SavedState:
    policy: str | None = None
    gang: bool = False
    hints: tuple[H.Hint, ...] = ()


def hint_to_json(hint: H.Hint) -> dict:
    return {"type": type(hint).__name__, **dataclasses.asdict(hint)}


def hint_from_json(data: dict) -> H.Hint:
    """A hint back from its JSON form, validated by its constructor (HintError/ValueError)."""
    fields = dict(data)
    cls = HINT_TYPES.get(str(fields.pop("type", "")))
    if cls is None:
        raise ValueError(f"unknown hint type in {data!r}")
    return cls(**fields)


class StateStore:
    """The state directory; `load` tolerates a missing or damaged file (and says so)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / STATE_FILE

    def load(self) -> SavedState:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return SavedState()
        except (OSError, ValueError) as exc:
            log.warning("state file %s is unreadable (%s); starting from defaults", self.path, exc)
            return SavedState()
        hints = []
        for item in raw.get("hints", []) if isinstance(raw, dict) else []:
            try:
                hints.append(hint_from_json(item))
            except (TypeError, ValueError, PolicyError) as exc:
                log.warning("dropping a bad saved hint %r: %s", item, exc)
        policy = raw.get("policy") if isinstance(raw, dict) else None
        gang = bool(raw.get("gang", False)) if isinstance(raw, dict) else False
        return SavedState(policy if isinstance(policy, str) else None, gang, tuple(hints))

    def save(self, policy: str, gang: bool, hints: Iterable[H.Hint]) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        body = json.dumps(
            {"version": VERSION, "policy": policy, "gang": gang,
             "hints": [hint_to_json(h) for h in hints]},
            indent=1,
        )  # fmt: skip
        fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

