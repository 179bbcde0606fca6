"""GuardedKernel: one kernel compiled plain (level 1) and instrumented (level 2)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import cupy

from hal.cuda._compat import blocks_per_sm
from hal.cuda.commands import Dim, GuardedLaunch, dim3
from hal.cuda.instrument import (
    FIX_EXTRA_FORMAT,
    FIX_SUFFIX,
    MAIN_EXTRA_FORMAT,
    PFIX_EXTRA_FORMAT,
    PFIX_SUFFIX,
    TAIL_EXTRA_FORMAT,
    TAIL_OPTIONS,
    TAIL_SUFFIX,
    instrument,
)
from hal.cuda.launch import PackedLauncher

log = logging.getLogger(__name__)
_told_no_tail = False  # the first kernel without the device runtime warns, the others log


class GuardedKernel:
    """A kernel from CUDA C++ source (`extern "C" __global__ void name(...)`).

    Calling it makes a GuardedLaunch command; a CudaHwQueue runs the plain compile when
    it is not guarding, else the guarded one followed by the relaunch of flushed blocks.
    The guarded compile is two modules: the main launch and the host's relaunches without
    relocatable code, and where the device runtime links, a one-thread check the queue
    launches behind each main launch, which after a flush launches the gate and the
    relaunch from the GPU (`tail`; hal.cuda.instrument); else the queue launches those.
    Compiles lazily, once per process (CuPy caches the binaries on disk too).
    """

    def __init__(self, source: str, name: str, options: Sequence[str] = ("-std=c++17",)) -> None:
        self.source = source
        self.name = name
        self.options = tuple(options)
        self._instrumented = instrument(source, [name])
        # why the instrumented module compiled without the device runtime, once it has (e.g.
        # CUDA_ERROR_CDP_NOT_SUPPORTED under MPS), else None
        self.no_tail_reason: str | None = None

    @cached_property
    def plain(self) -> cupy.RawKernel:
        return cupy.RawModule(code=self.source, options=self.options).get_function(self.name)

    @cached_property
    def _compiled(self) -> tuple[cupy.RawModule, cupy.RawModule | None]:
        """The instrumented module (the main launch and the host's relaunches), and the one
        with the kernels the GPU launches after a flush (dynamic parallelism), or None
        where the device runtime does not link (then the host gates every launch).

        Two modules because relocatable device code costs every kernel in it: on the H100
        the stack's tiled GEMM took 63 registers and 16 bytes of stack compiled with
        `-rdc=true` (even with no launch in it), 48 and none without, and ran 2-4% slower
        in the stack (docs/h100-benchmarks.md, "Relocatable code out of the main kernel")."""
        guarded = cupy.RawModule(code=self._instrumented.source, options=self.options)
        try:
            tail = cupy.RawModule(code=self._instrumented.source, options=self.options + TAIL_OPTIONS)
            tail.get_function(self.name + TAIL_SUFFIX)  # compiles and links now, so a failure lands here
        except Exception as exc:  # noqa: BLE001 - no device runtime to link: the host gates
            global _told_no_tail
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.no_tail_reason = why
            if _told_no_tail:
                log.info("kernel %s: no dynamic parallelism (%s); the gate comes from the host", self.name, why)
            else:
                _told_no_tail = True
                log.warning("no dynamic parallelism for guarded kernels (%s): every level-2 launch gets its gate "
                            "and relaunch from the host, which costs short launches more (CUDA refuses it "
                            "under MPS; see docs/architecture.md, \"Under MPS\")", why)  # fmt: skip
            tail = None
        return guarded, tail

    @property
    def tail(self) -> bool:
        """Whether a flushed launch gates itself from the GPU (compiles on first use)."""
        return self._compiled[1] is not None

    @cached_property
    def main(self) -> cupy.RawKernel:
        return self._compiled[0].get_function(self.name)

    @cached_property
    def fix(self) -> cupy.RawKernel:
        return self._compiled[0].get_function(self.name + FIX_SUFFIX)

    @cached_property
    def pfix(self) -> cupy.RawKernel:
        """The host's relaunch that a board or a suspend can stop (hal.cuda.instrument)."""
        return self._compiled[0].get_function(self.name + PFIX_SUFFIX)

    @cached_property
    def tail_check(self) -> cupy.RawKernel:
        """One thread behind a main launch: after a flush, it launches the gate and the
        relaunch from the GPU (hal.cuda.instrument); only where `tail`."""
        module = self._compiled[1]
        if module is None:
            raise RuntimeError(f"kernel {self.name}: no dynamic parallelism here ({self.no_tail_reason})")
        return module.get_function(self.name + TAIL_SUFFIX)

    # the launchers a queue uses (hal.cuda.launch: a guarded launch costs the host 7.8 us,
    # 11.6 through CuPy's call)
    @cached_property
    def launch_plain(self) -> PackedLauncher:
        return PackedLauncher(self.plain)

    @cached_property
    def launch_main(self) -> PackedLauncher:
        return PackedLauncher(self.main, MAIN_EXTRA_FORMAT)

    @cached_property
    def launch_fix(self) -> PackedLauncher:
        return PackedLauncher(self.fix, FIX_EXTRA_FORMAT)

    @cached_property
    def launch_pfix(self) -> PackedLauncher:
        return PackedLauncher(self.pfix, PFIX_EXTRA_FORMAT)

    @cached_property
    def launch_tail(self) -> PackedLauncher:
        return PackedLauncher(self.tail_check, TAIL_EXTRA_FORMAT)

    def loop_keeps_occupancy(self, threads: int, shared_mem: int) -> bool:
        """Whether the stoppable relaunch, run as the whole launch (a loop over its blocks,
        hal.cuda.hwqueue), fits as many blocks on an SM as the main kernel: its loop can
        take a few registers more, and where that costs a block per SM the launch runs
        slower (the H100's sgemm compiled with relocatable code, before the two modules:
        3 blocks of 65 registers against 4 of 63, 16.6%; now both take 48)."""
        return blocks_per_sm(self.pfix, threads, shared_mem) >= blocks_per_sm(self.main, threads, shared_mem)

    def fix_grid(self, blocks: int, threads: int, shared_mem: int, sm_count: int) -> int:
        """At most one wave of relaunch blocks: enough to refill the GPU, cheap when idle."""
        wave = blocks_per_sm(self.fix, threads, shared_mem) * sm_count
        return max(1, min(blocks, wave))

    def __call__(
        self, grid: Dim, block: Dim, args: Sequence[Any], shared_mem: int = 0, name: str = ""
    ) -> GuardedLaunch:
        return GuardedLaunch(
            name=name or self.name,
            kernel=self,
            grid=dim3(grid),
            block=dim3(block, "block"),
            args=tuple(args),
            shared_mem=shared_mem,
        )

    @staticmethod
    def blocks(grid: tuple[int, int, int]) -> int:
        return math.prod(grid)
