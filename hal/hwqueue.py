"""The HwQueue interface: what every hardware adapter offers the XQueue runtime."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from hal.clock import Clock
from hal.command import HwCommand, Level
from hal.errors import UnsupportedLevelError

CompletionCallback = Callable[[HwCommand], None]


class HwQueue(ABC):
    """A hardware command queue (a CUDA stream, a simulated XPU queue).

    Level 1 needs launch and completion; level 2 adds deactivate/reactivate (launched
    commands that have not started stay queued); level 3 adds interrupt/restore (the
    running command stops and later continues). `max_level` says which a queue offers.

    Completion callbacks run on a thread the adapter owns (or, in virtual time, on the
    clock's caller); where `direct_wait`, also on a thread returning from `wait_for` or
    `synchronize(None)`, for what it saw complete. They must be quick and must not block,
    and each is called once.
    """

    max_level: Level = Level.BLOCK
    # True where synchronize(None) blocks in the driver and returns as soon as the work
    # is done (CUDA): then XQueue.wait blocks there instead of waiting for the adapter's
    # completion thread to notice, as native code would.
    direct_wait: bool = False
    # True where launching costs less than telling a scheduler the queue became ready
    # (a CUDA launch: microseconds in the driver; a CPU worker's queue): XQueue.submit
    # then launches a queue's first command before its READY event, not after.
    cheap_launch: bool = False
    # True where the queue can launch a command behind a *hold* (`launch_held`): the
    # hardware lets it start only if, once the work before it is done, nothing refuses
    # the queue (`close_holds`, a suspend gate given to `set_hold_gate`, a priority
    # board). An XQueue at a low threshold then launches ahead instead of waiting for
    # each completion (preempt.xqueue, "Holds"; hal.cuda.holds).
    holds: bool = False
    clock: Clock
    device_name: str = ""

    @abstractmethod
    def launch(self, cmd: HwCommand, on_complete: CompletionCallback | None = None) -> None:
        """Hand `cmd` to the hardware without waiting; call `on_complete(cmd)` when done."""

    @abstractmethod
    def synchronize(self, timeout: float | None = None) -> bool:
        """Block until every launched command has completed; False on timeout."""

    def wait_for(self, cmd: HwCommand, then: Callable[[], None] | None = None) -> bool:
        """Block until `cmd`, launched with a completion callback, has completed (its
        callback may have run on this thread, or may come later), the way
        `synchronize(None)` does for all, and call `then()` on this thread as soon as it
        knows, before any callback: the caller may launch from there (a throttled XQueue
        launches its next commands). False where the adapter cannot (`then` is not
        called), and the caller then waits for the callback instead."""
        return False

    def launch_held(self, cmd: HwCommand, on_complete: CompletionCallback | None = None) -> None:
        """`launch` behind a hold (where `holds`)."""
        raise UnsupportedLevelError(f"{type(self).__name__} has no holds")

    def close_holds(self) -> None:
        """Holds refuse from now on, until `open_holds` (where `holds`)."""

    def open_holds(self) -> None:
        """Holds pass again, and the one the queue was refused at is let past, unless
        something else still refuses it."""

    def pass_holds(self) -> None:
        """Let the queue past every hold launched so far, whatever refuses it: what was
        launched drains (`XQueue.suspend(sync_hw_queue=True)`)."""

    def release_holds(self) -> None:
        """Let the queue past a hold that a gate or a board refused, if nothing refuses it now."""

    def set_hold_gate(self, gate: memoryview | None, slot: int = 0, stall: memoryview | None = None) -> bool:
        """Have holds read a suspend gate's byte `gate[slot]` (nonzero: refuse) and mark
        `stall[slot]` where one refuses; False where the hardware cannot read them."""
        return False

    def deactivate(self) -> None:
        raise UnsupportedLevelError(f"{type(self).__name__} does not support level 2 (deactivate)")

    def reactivate(self) -> None:
        raise UnsupportedLevelError(f"{type(self).__name__} does not support level 2 (reactivate)")

    def interrupt(self) -> None:
        raise UnsupportedLevelError(f"{type(self).__name__} does not support level 3 (interrupt)")

    def restore(self) -> None:
        raise UnsupportedLevelError(f"{type(self).__name__} does not support level 3 (restore)")

    def set_priority(self, priority: int) -> None:
        """Hardware priority hint for commands launched from now on (XSched's priority:
        higher is more urgent). Devices with prioritised hardware queues (CUDA stream
        priorities) map it onto their range; the default ignores it."""

    def anticipation_summary(self) -> dict[str, int] | None:
        """Where the queue holds its level ahead of foreseen tasks (hal.anticipation: CUDA
        on the priority board), how that went (`Anticipation.summary`); else None."""
        return None

    def close(self) -> None:
        """Release the queue; launched commands may be dropped."""
