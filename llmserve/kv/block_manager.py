"""Paged KV block accounting in the manner of vLLM: fixed-size blocks, per-sequence block
tables, a GPU pool, and a host pool for the blocks of swapped-out sequences."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from llmserve.kv.errors import (
    HostPoolFullError,
    KVConfigError,
    KVInvariantError,
    OutOfBlocksError,
    SequenceStateError,
    UnknownSequenceError,
)

BlockPairs = tuple[tuple[int, int], ...]
"""(source block id, destination block id) pairs of one swap, in block-table order."""


class BlockLocation(enum.Enum):
    """Where a sequence's KV blocks live."""

    GPU = "gpu"
    HOST = "host"


@dataclass(frozen=True)
class KVUsage:
    """KV gauges at one instant: blocks used / total on the GPU, and blocks swapped to host."""

    block_size: int
    gpu_blocks_total: int
    gpu_blocks_used: int
    host_blocks_total: int
    host_blocks_used: int
    seqs_on_gpu: int
    seqs_swapped: int

    @property
    def gpu_blocks_free(self) -> int:
        return self.gpu_blocks_total - self.gpu_blocks_used

    @property
    def gpu_fraction(self) -> float:
        """Fraction of GPU blocks in use, 0.0 to 1.0."""
        return self.gpu_blocks_used / self.gpu_blocks_total


class BlockManager:
    """Allocates, grows, frees, swaps and drops the KV blocks of sequences.

    Pure bookkeeping, no tensors: a real executor copies the blocks that `swap_out` and
    `swap_in` name in their (source, destination) pairs. Owned by the scheduler's thread.

    A sequence's blocks are all on the GPU or all on the host (vLLM's all-or-nothing
    eviction). `num_tokens(seq_id)` is the number of token slots it holds; the last block
    is partly filled when that is not a multiple of `block_size`.
    """

    def __init__(
        self, num_gpu_blocks: int, block_size: int = 16, num_host_blocks: int | None = None
    ) -> None:
        if isinstance(num_gpu_blocks, bool) or not isinstance(num_gpu_blocks, int):
            raise KVConfigError(f"num_gpu_blocks must be an integer >= 1, got {num_gpu_blocks!r}")
        if num_gpu_blocks < 1:
            raise KVConfigError(f"num_gpu_blocks must be >= 1, got {num_gpu_blocks}")
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
            raise KVConfigError(f"block_size must be an integer >= 1, got {block_size!r}")
        if num_host_blocks is None:
            num_host_blocks = 4 * num_gpu_blocks
        if isinstance(num_host_blocks, bool) or not isinstance(num_host_blocks, int):
            raise KVConfigError(f"num_host_blocks must be an integer >= 0, got {num_host_blocks!r}")
        if num_host_blocks < 0:
            raise KVConfigError(f"num_host_blocks must be >= 0, got {num_host_blocks}")
        self.block_size = block_size
        self.num_gpu_blocks = num_gpu_blocks
        self.num_host_blocks = num_host_blocks
        # Free lists are stacks; reversed so that a fresh pool hands out block 0 first.
        self._gpu_free: list[int] = list(range(num_gpu_blocks - 1, -1, -1))
        self._host_free: list[int] = list(range(num_host_blocks - 1, -1, -1))
        self._gpu_tables: dict[str, list[int]] = {}
        self._host_tables: dict[str, list[int]] = {}
        self._tokens: dict[str, int] = {}
        # block_table() results, kept until the table changes: a decode step asks for
        # every running table, and a table changes only every block_size tokens.
        self._table_tuples: dict[str, tuple[int, ...]] = {}

    # ---- queries -------------------------------------------------------------------

    def blocks_for(self, num_tokens: int) -> int:
        """Blocks needed to hold `num_tokens` token slots."""
        return -(-num_tokens // self.block_size)

    @property
    def num_free_gpu_blocks(self) -> int:
        return len(self._gpu_free)

    @property
    def num_free_host_blocks(self) -> int:
        return len(self._host_free)

    def __contains__(self, seq_id: object) -> bool:
        return seq_id in self._tokens

    def location(self, seq_id: str) -> BlockLocation:
        if seq_id in self._gpu_tables:
            return BlockLocation.GPU
        if seq_id in self._host_tables:
            return BlockLocation.HOST
        raise UnknownSequenceError(f"sequence {seq_id!r} owns no KV blocks")

    def num_tokens(self, seq_id: str) -> int:
        """Token slots held by `seq_id` (on the GPU or on the host)."""
        tokens = self._tokens.get(seq_id)
        if tokens is None:
            raise UnknownSequenceError(f"sequence {seq_id!r} owns no KV blocks")
        return tokens

    def block_table(self, seq_id: str) -> tuple[int, ...]:
        """Block ids of `seq_id`, in token order, in the pool that `location` names."""
        table = self._table_tuples.get(seq_id)
        if table is None:
            if self.location(seq_id) is BlockLocation.GPU:
                table = tuple(self._gpu_tables[seq_id])
            else:
                table = tuple(self._host_tables[seq_id])
            self._table_tuples[seq_id] = table
        return table

    def num_blocks(self, seq_id: str) -> int:
        """Blocks held by `seq_id`, wherever they are."""
        table = self._gpu_tables.get(seq_id)
        if table is None:
            table = self._host_tables.get(seq_id)
            if table is None:
                raise UnknownSequenceError(f"sequence {seq_id!r} owns no KV blocks")
        return len(table)

    def blocks_to_grow(self, seq_id: str, num_new_tokens: int) -> int:
        """New GPU blocks an `append(seq_id, num_new_tokens)` would take (0 if it fits)."""
        have = len(self._gpu_table(seq_id, "grow"))
        return max(0, self.blocks_for(self._tokens[seq_id] + num_new_tokens) - have)

    def can_allocate(self, num_tokens: int) -> bool:
        return self.blocks_for(num_tokens) <= len(self._gpu_free)

    def can_swap_out(self, seq_id: str) -> bool:
        return len(self._gpu_table(seq_id, "swap out")) <= len(self._host_free)

    def can_swap_in(self, seq_id: str) -> bool:
        return len(self._host_table(seq_id, "swap in")) <= len(self._gpu_free)

    def usage(self) -> KVUsage:
        return KVUsage(
            block_size=self.block_size,
            gpu_blocks_total=self.num_gpu_blocks,
            gpu_blocks_used=self.num_gpu_blocks - len(self._gpu_free),
            host_blocks_total=self.num_host_blocks,
            host_blocks_used=self.num_host_blocks - len(self._host_free),
            seqs_on_gpu=len(self._gpu_tables),
            seqs_swapped=len(self._host_tables),
        )

    # ---- operations ----------------------------------------------------------------

    def allocate(self, seq_id: str, num_tokens: int) -> tuple[int, ...]:
        """Give a new sequence GPU blocks for `num_tokens` slots; returns its block table."""
        if seq_id in self._tokens:
            raise SequenceStateError(
                f"sequence {seq_id!r} already owns KV blocks on the {self.location(seq_id).value}"
            )
        self._check_count("num_tokens", num_tokens)
        need = self.blocks_for(num_tokens)
        if need > len(self._gpu_free):
            raise OutOfBlocksError(
                f"allocate of {seq_id!r} for {num_tokens} tokens needs {need} GPU blocks, "
                f"{len(self._gpu_free)} of {self.num_gpu_blocks} are free"
            )
        table = self._take(self._gpu_free, need)
        self._gpu_tables[seq_id] = table
        self._tokens[seq_id] = num_tokens
        return tuple(table)

    def append(self, seq_id: str, num_tokens: int = 1) -> int:
        """Add `num_tokens` slots to a GPU sequence, growing its table; returns new blocks."""
        if type(num_tokens) is not int or num_tokens < 0:  # the hot path: one check
            self._check_count("num_tokens", num_tokens)
        table = self._gpu_table(seq_id, "append to")
        need = self.blocks_for(self._tokens[seq_id] + num_tokens) - len(table)
        if need > len(self._gpu_free):
            raise OutOfBlocksError(
                f"append of {num_tokens} tokens to {seq_id!r} needs {need} new GPU blocks, "
                f"{len(self._gpu_free)} of {self.num_gpu_blocks} are free"
            )
        if need > 0:
            table.extend(self._take(self._gpu_free, need))
            self._table_tuples.pop(seq_id, None)
        self._tokens[seq_id] += num_tokens
        return max(need, 0)

    def try_append(self, seq_id: str, num_tokens: int = 1) -> bool:
        """`append` when the free GPU blocks allow it, else change nothing; whether it did."""
        if type(num_tokens) is not int or num_tokens < 0:
            self._check_count("num_tokens", num_tokens)
        table = self._gpu_table(seq_id, "append to")
        tokens = self._tokens[seq_id] + num_tokens
        need = -(-tokens // self.block_size) - len(table)
        if need > len(self._gpu_free):
            return False
        if need > 0:
            table.extend(self._take(self._gpu_free, need))
            self._table_tuples.pop(seq_id, None)
        self._tokens[seq_id] = tokens
        return True

    def free(self, seq_id: str) -> int:
        """Release every block of `seq_id` (GPU or host); returns how many were released."""
        if seq_id in self._gpu_tables:
            table = self._gpu_tables.pop(seq_id)
            self._gpu_free.extend(reversed(table))
        elif seq_id in self._host_tables:
            table = self._host_tables.pop(seq_id)
            self._host_free.extend(reversed(table))
        else:
            raise UnknownSequenceError(f"free of {seq_id!r}: it owns no KV blocks")
        del self._tokens[seq_id]
        self._table_tuples.pop(seq_id, None)
        return len(table)

    def drop(self, seq_id: str) -> int:
        """Preempt by recompute: forget a GPU sequence's KV; returns the blocks released."""
        self._gpu_table(seq_id, "drop")
        return self.free(seq_id)

    def swap_out(self, seq_id: str) -> BlockPairs:
        """Move a GPU sequence's blocks to the host pool; returns (gpu, host) block pairs."""
        table = self._gpu_table(seq_id, "swap out")
        if len(table) > len(self._host_free):
            raise HostPoolFullError(
                f"swap-out of {seq_id!r} needs {len(table)} host blocks, "
                f"{len(self._host_free)} of {self.num_host_blocks} are free"
            )
        host = self._take(self._host_free, len(table))
        del self._gpu_tables[seq_id]
        self._gpu_free.extend(reversed(table))
        self._host_tables[seq_id] = host
        self._table_tuples.pop(seq_id, None)
        return tuple(zip(table, host))

    def swap_in(self, seq_id: str) -> BlockPairs:
        """Move a swapped sequence's blocks back to the GPU; returns (host, gpu) block pairs."""
        host = self._host_table(seq_id, "swap in")
        if len(host) > len(self._gpu_free):
            raise OutOfBlocksError(
                f"swap-in of {seq_id!r} needs {len(host)} free GPU blocks, "
                f"{len(self._gpu_free)} of {self.num_gpu_blocks} are free"
            )
        gpu = self._take(self._gpu_free, len(host))
        del self._host_tables[seq_id]
        self._host_free.extend(reversed(host))
        self._gpu_tables[seq_id] = gpu
        self._table_tuples.pop(seq_id, None)
        return tuple(zip(host, gpu))

    def audit(self) -> None:
        """Raise KVInvariantError unless every block is either free or owned exactly once
        and every table holds exactly the blocks its token count needs."""
        for pool, total, free, tables in (
            ("GPU", self.num_gpu_blocks, self._gpu_free, self._gpu_tables),
            ("host", self.num_host_blocks, self._host_free, self._host_tables),
        ):
            owned = [b for table in tables.values() for b in table]
            every = owned + free
            if len(every) != total or set(every) != set(range(total)):
                raise KVInvariantError(
                    f"{pool} pool: {len(owned)} owned + {len(free)} free blocks "
                    f"({len(set(every))} distinct) do not make the {total} blocks"
                )
            for seq_id, table in tables.items():
                if len(table) != self.blocks_for(self._tokens[seq_id]):
                    raise KVInvariantError(
                        f"{seq_id!r} holds {len(table)} {pool} blocks for "
                        f"{self._tokens[seq_id]} tokens"
                    )
        for seq_id, cached in self._table_tuples.items():
            table = self._gpu_tables.get(seq_id, self._host_tables.get(seq_id))
            if table is None or cached != tuple(table):
                raise KVInvariantError(f"block_table({seq_id!r}) is stale: {cached}")
        if set(self._tokens) != set(self._gpu_tables) | set(self._host_tables) or (
            set(self._gpu_tables) & set(self._host_tables)
        ):
            raise KVInvariantError("a sequence is in both pools or in neither")

    # ---- helpers -------------------------------------------------------------------

    def _gpu_table(self, seq_id: str, what: str) -> list[int]:
        table = self._gpu_tables.get(seq_id)
        if table is None:
            if seq_id in self._host_tables:
                raise SequenceStateError(
                    f"cannot {what} {seq_id!r}: its blocks are swapped out to host"
                )
            raise UnknownSequenceError(f"cannot {what} {seq_id!r}: it owns no KV blocks")
        return table

    def _host_table(self, seq_id: str, what: str) -> list[int]:
        table = self._host_tables.get(seq_id)
        if table is None:
            if seq_id in self._gpu_tables:
                raise SequenceStateError(f"cannot {what} {seq_id!r}: its blocks are on the GPU")
            raise UnknownSequenceError(f"cannot {what} {seq_id!r}: it owns no KV blocks")
        return table

    @staticmethod
    def _take(free: list[int], n: int) -> list[int]:
        if n <= 0:
            return []
        taken = free[-n:]
        del free[-n:]
        taken.reverse()
        return taken

    @staticmethod
    def _check_count(name: str, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise KVConfigError(f"{name} must be an integer >= 0, got {value!r}")
