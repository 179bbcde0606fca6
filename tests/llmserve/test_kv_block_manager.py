"""The paged KV block manager: accounting invariants under random operations, and errors."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from llmserve.errors import LLMServeError
from llmserve.kv import (
    BlockLocation,
    BlockManager,
    HostPoolFullError,
    KVCacheError,
    KVConfigError,
    OutOfBlocksError,
    SequenceStateError,
    UnknownSequenceError,
)

GPU_BLOCKS = 12
HOST_BLOCKS = 8
BLOCK = 4


class BlockManagerMachine(RuleBasedStateMachine):
    """A model of what each sequence should hold (location, tokens) against the manager;
    every operation must succeed exactly when the model says it fits."""

    def __init__(self) -> None:
        super().__init__()
        self.kv = BlockManager(GPU_BLOCKS, BLOCK, HOST_BLOCKS)
        self.model: dict[str, tuple[BlockLocation, int]] = {}
        self.next_id = 0

    def blocks(self, tokens: int) -> int:
        return -(-tokens // BLOCK)

    def used(self, where: BlockLocation) -> int:
        return sum(self.blocks(t) for loc, t in self.model.values() if loc is where)

    def ids(self, where: BlockLocation) -> list[str]:
        return sorted(s for s, (loc, _) in self.model.items() if loc is where)

    @rule(tokens=st.integers(0, 30))
    def allocate(self, tokens: int) -> None:
        seq = f"s{self.next_id}"
        self.next_id += 1
        if self.blocks(tokens) > GPU_BLOCKS - self.used(BlockLocation.GPU):
            with pytest.raises(OutOfBlocksError):
                self.kv.allocate(seq, tokens)
            return
        table = self.kv.allocate(seq, tokens)
        assert len(table) == self.blocks(tokens)
        self.model[seq] = (BlockLocation.GPU, tokens)

    @precondition(lambda self: self.ids(BlockLocation.GPU))
    @rule(data=st.data(), n=st.integers(0, 9))
    def append(self, data: st.DataObject, n: int) -> None:
        seq = data.draw(st.sampled_from(self.ids(BlockLocation.GPU)))
        _, tokens = self.model[seq]
        grow = self.blocks(tokens + n) - self.blocks(tokens)
        assert self.kv.blocks_to_grow(seq, n) == grow
        if grow > GPU_BLOCKS - self.used(BlockLocation.GPU):
            with pytest.raises(OutOfBlocksError):
                self.kv.append(seq, n)
            return
        assert self.kv.append(seq, n) == grow
        self.model[seq] = (BlockLocation.GPU, tokens + n)

    @precondition(lambda self: self.ids(BlockLocation.GPU))
    @rule(data=st.data(), n=st.integers(0, 9))
    def try_append(self, data: st.DataObject, n: int) -> None:
        seq = data.draw(st.sampled_from(self.ids(BlockLocation.GPU)))
        _, tokens = self.model[seq]
        before = self.kv.block_table(seq)
        fits = self.blocks(tokens + n) - self.blocks(tokens) <= GPU_BLOCKS - self.used(
            BlockLocation.GPU
        )
        assert self.kv.try_append(seq, n) is fits
        if fits:
            self.model[seq] = (BlockLocation.GPU, tokens + n)
        else:  # refused: nothing changed
            assert self.kv.block_table(seq) == before and self.kv.num_tokens(seq) == tokens

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def free(self, data: st.DataObject) -> None:
        seq = data.draw(st.sampled_from(sorted(self.model)))
        _, tokens = self.model.pop(seq)
        assert self.kv.free(seq) == self.blocks(tokens)

    @precondition(lambda self: self.ids(BlockLocation.GPU))
    @rule(data=st.data())
    def drop(self, data: st.DataObject) -> None:
        seq = data.draw(st.sampled_from(self.ids(BlockLocation.GPU)))
        _, tokens = self.model.pop(seq)
        assert self.kv.drop(seq) == self.blocks(tokens)

    @precondition(lambda self: self.ids(BlockLocation.GPU))
    @rule(data=st.data())
    def swap_out(self, data: st.DataObject) -> None:
        seq = data.draw(st.sampled_from(self.ids(BlockLocation.GPU)))
        _, tokens = self.model[seq]
        if self.blocks(tokens) > HOST_BLOCKS - self.used(BlockLocation.HOST):
            assert not self.kv.can_swap_out(seq)
            with pytest.raises(HostPoolFullError):
                self.kv.swap_out(seq)
            return
        gpu_table = self.kv.block_table(seq)
        pairs = self.kv.swap_out(seq)
        assert [g for g, _ in pairs] == list(gpu_table)
        assert [h for _, h in pairs] == list(self.kv.block_table(seq))
        self.model[seq] = (BlockLocation.HOST, tokens)

    @precondition(lambda self: self.ids(BlockLocation.HOST))
    @rule(data=st.data())
    def swap_in(self, data: st.DataObject) -> None:
        seq = data.draw(st.sampled_from(self.ids(BlockLocation.HOST)))
        _, tokens = self.model[seq]
        if self.blocks(tokens) > GPU_BLOCKS - self.used(BlockLocation.GPU):
            assert not self.kv.can_swap_in(seq)
            with pytest.raises(OutOfBlocksError):
                self.kv.swap_in(seq)
            return
        pairs = self.kv.swap_in(seq)
        assert len(pairs) == self.blocks(tokens)
        self.model[seq] = (BlockLocation.GPU, tokens)

    @precondition(lambda self: self.ids(BlockLocation.HOST))
    @rule(data=st.data())
    def wrong_pool_operations_fail(self, data: st.DataObject) -> None:
        seq = data.draw(st.sampled_from(self.ids(BlockLocation.HOST)))
        for op in (lambda: self.kv.append(seq, 1), lambda: self.kv.drop(seq)):
            with pytest.raises(SequenceStateError):
                op()

    @invariant()
    def no_block_leaked_or_owned_twice(self) -> None:
        self.kv.audit()
        for where, total, free in (
            (BlockLocation.GPU, GPU_BLOCKS, self.kv.num_free_gpu_blocks),
            (BlockLocation.HOST, HOST_BLOCKS, self.kv.num_free_host_blocks),
        ):
            owned = [b for s in self.ids(where) for b in self.kv.block_table(s)]
            assert len(owned) == len(set(owned)), f"a {where.value} block is owned twice"
            assert all(0 <= b < total for b in owned)
            assert len(owned) + free == total, f"{where.value} blocks leaked"

    @invariant()
    def gauges_match_the_model(self) -> None:
        u = self.kv.usage()
        assert u.gpu_blocks_used == self.used(BlockLocation.GPU)
        assert u.host_blocks_used == self.used(BlockLocation.HOST)
        assert u.gpu_blocks_free == self.kv.num_free_gpu_blocks
        assert u.seqs_on_gpu == len(self.ids(BlockLocation.GPU))
        assert u.seqs_swapped == len(self.ids(BlockLocation.HOST))
        assert (u.gpu_blocks_total, u.host_blocks_total) == (GPU_BLOCKS, HOST_BLOCKS)
        for seq, (where, tokens) in self.model.items():
            assert self.kv.location(seq) is where
            assert self.kv.num_tokens(seq) == tokens


BlockManagerMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
TestBlockManagerInvariants = BlockManagerMachine.TestCase


def test_append_grows_a_block_only_at_a_block_boundary() -> None:
    kv = BlockManager(4, block_size=4)
    kv.allocate("a", 3)
    assert kv.append("a") == 0  # 4 tokens: still one block
    assert kv.append("a") == 1  # 5 tokens: a second block
    assert kv.block_table("a") == (0, 1)
    assert kv.usage().gpu_blocks_used == 2


def test_swap_in_with_too_few_free_blocks_names_the_numbers() -> None:
    kv = BlockManager(4, block_size=4, num_host_blocks=4)
    kv.allocate("a", 12)  # 3 blocks
    kv.swap_out("a")
    kv.allocate("b", 8)  # 2 of 4 blocks taken, 2 free
    with pytest.raises(OutOfBlocksError, match=r"swap-in of 'a' needs 3 free GPU blocks, 2 of 4"):
        kv.swap_in("a")
    assert kv.location("a") is BlockLocation.HOST  # nothing changed
    kv.audit()


def test_swap_out_and_back_keeps_tokens_and_frees_gpu_blocks() -> None:
    kv = BlockManager(8, block_size=4)
    kv.allocate("a", 10)
    kv.swap_out("a")
    u = kv.usage()
    assert (u.gpu_blocks_used, u.host_blocks_used, u.seqs_swapped) == (0, 3, 1)
    kv.swap_in("a")
    assert kv.num_tokens("a") == 10
    assert kv.usage().host_blocks_used == 0


def test_errors_belong_to_the_family_and_name_the_bad_value() -> None:
    kv = BlockManager(2, block_size=4)
    with pytest.raises(UnknownSequenceError, match="'ghost'"):
        kv.free("ghost")
    kv.allocate("a", 1)
    with pytest.raises(SequenceStateError, match="'a' already owns"):
        kv.allocate("a", 1)
    with pytest.raises(OutOfBlocksError, match="needs 3 GPU blocks, 1 of 2 are free"):
        kv.allocate("b", 9)
    with pytest.raises(KVConfigError, match="-1"):
        kv.append("a", -1)
    with pytest.raises(SequenceStateError, match="on the GPU"):
        kv.swap_in("a")
    assert issubclass(KVCacheError, LLMServeError)


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"num_gpu_blocks": 0}, "num_gpu_blocks must be >= 1, got 0"),
        ({"num_gpu_blocks": 4, "block_size": 0}, "block_size must be an integer >= 1, got 0"),
        ({"num_gpu_blocks": 4, "num_host_blocks": -2}, "num_host_blocks must be >= 0, got -2"),
    ],
)
def test_bad_pool_sizes_are_refused(kwargs: dict[str, int], text: str) -> None:
    with pytest.raises(KVConfigError, match=text):
        BlockManager(**kwargs)
