"""The queue of admitted sequences that hold no GPU KV (waiting or swapped), kept in rank order."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import Any

from llmserve.errors import SchedulerError
from llmserve.sched.request import Sequence


class RequestQueue:
    """Sequences sorted by a rank key fixed when they enter (smallest first).

    Keys are computed once on push: every policy's key is constant while a sequence
    waits, so the order never needs refreshing. Ties break on the sequence's index.
    """

    def __init__(self) -> None:
        self._keys: list[tuple[Any, ...]] = []
        self._seqs: list[Sequence] = []
        self._key_of: dict[str, tuple[Any, ...]] = {}

    def __len__(self) -> int:
        return len(self._seqs)

    def __iter__(self) -> Iterator[Sequence]:
        return iter(self._seqs)  # do not push or pop while iterating

    def __contains__(self, seq: Sequence) -> bool:
        return seq.id in self._key_of

    def push(self, seq: Sequence, rank: tuple[Any, ...]) -> None:
        if seq.id in self._key_of:
            raise SchedulerError(f"sequence {seq.id!r} is already queued")
        key = (*rank, seq.index)
        pos = bisect.bisect_right(self._keys, key)
        self._keys.insert(pos, key)
        self._seqs.insert(pos, seq)
        self._key_of[seq.id] = key

    def peek(self) -> Sequence | None:
        return self._seqs[0] if self._seqs else None

    def pop_front(self) -> Sequence:
        if not self._seqs:
            raise SchedulerError("pop from an empty request queue")
        self._keys.pop(0)
        seq = self._seqs.pop(0)
        del self._key_of[seq.id]
        return seq

    def remove(self, seq: Sequence) -> None:
        key = self._key_of.pop(seq.id, None)
        if key is None:
            raise SchedulerError(f"sequence {seq.id!r} is not queued")
        pos = bisect.bisect_left(self._keys, key)
        del self._keys[pos]
        del self._seqs[pos]
