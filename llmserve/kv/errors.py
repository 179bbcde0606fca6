"""The KV cache's exceptions, a branch of the llmserve family rooted at KVCacheError."""

from __future__ import annotations

from llmserve.errors import LLMServeError


class KVCacheError(LLMServeError):
    """Base of every error raised by the KV block manager."""


class KVConfigError(KVCacheError, ValueError):
    """A pool size, block size or token count outside its allowed range."""


class OutOfBlocksError(KVCacheError):
    """Too few free GPU blocks for an allocate, append or swap-in."""


class HostPoolFullError(KVCacheError):
    """Too few free host blocks to swap a sequence out."""


class UnknownSequenceError(KVCacheError, KeyError):
    """A sequence id that owns no blocks."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class SequenceStateError(KVCacheError):
    """An operation that does not fit where the sequence's blocks are (GPU or host)."""


class KVInvariantError(KVCacheError):
    """The block accounting is inconsistent (a leaked or doubly owned block): a bug."""
