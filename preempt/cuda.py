"""StreamXQueue: an XQueue in front of an application's cupy.cuda.Stream (needs CuPy)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cupy

from hal.command import HwCommand
from hal.cuda.commands import call
from hal.cuda.device import CudaDevice
from preempt.xqueue import XQueue


class StreamXQueue:
    """Submit closures (or HwCommands) to an XQueue over `stream`.

    `with xq:` is one task: closures submitted inside run on `stream` through the XQueue,
    and leaving the block waits for all of them and records the task's latency.
    Level 2 makes the queue guard its guarded kernels. With a `runtime`
    (preempt.runtime.Runtime) the queue is also scheduled by its policy.
    """

    def __init__(self, stream: cupy.cuda.Stream | None = None, *, runtime: Any = None,
                 **params: Any) -> None:  # fmt: skip

        index = stream.device_id if stream is not None else cupy.cuda.runtime.getDevice()
        device = CudaDevice.open(index)
        level = params.get("level") or 1
        self.hwq = device.create_queue(stream, guard=level >= 2)
        self.stream = self.hwq.stream
        self.xq = runtime.create_xqueue(self.hwq, **params) if runtime else XQueue(self.hwq, **params)
        self._tasks: list[Any] = []

    def submit(self, fn: Callable[..., Any] | HwCommand, *args: Any, **kwargs: Any):
        """Queue `fn(*args, **kwargs)` (or an HwCommand); returns the XCommand to wait on."""
        cmd = fn if isinstance(fn, HwCommand) else call(fn, *args, **kwargs)
        return self.xq.submit(cmd)

    __call__ = submit

    def wait(self, xcmd, timeout: float | None = None) -> Any:
        return self.xq.wait(xcmd, timeout)

    def __enter__(self) -> StreamXQueue:
        task = self.xq.task()
        task.__enter__()
        self._tasks.append(task)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._tasks.pop().__exit__(*exc)

    def __getattr__(self, name: str) -> Any:  # suspend, resume, synchronize, set_level, ...
        return getattr(self.xq, name)

    def close(self) -> None:
        self.xq.close()
        self.hwq.close()
