"""Paged KV cache accounting: block tables, a GPU pool and a host pool for swapped sequences."""

from llmserve.kv.block_manager import BlockLocation, BlockManager, KVUsage
from llmserve.kv.errors import (
    HostPoolFullError,
    KVCacheError,
    KVConfigError,
    KVInvariantError,
    OutOfBlocksError,
    SequenceStateError,
    UnknownSequenceError,
)

__all__ = [
    "BlockLocation",
    "BlockManager",
    "HostPoolFullError",
    "KVCacheError",
    "KVConfigError",
    "KVInvariantError",
    "KVUsage",
    "OutOfBlocksError",
    "SequenceStateError",
    "UnknownSequenceError",
]
