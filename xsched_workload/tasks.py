"""What one task of a queue submits: spin commands, or one pass of a DNN-like layer stack.

`kind=spin`: `commands` commands of `command_us` each (on CUDA, calibrated spin kernels).
`kind=dnn`: a forward pass through `layers` transformer-style MLP layers. On CUDA these
are real kernels (hal.cuda.tasks.TransformerStack: layernorm, GEMM, bias-GELU, GEMM,
residual; all guarded, so level 2 flushes them), with buffers of the queue's own; their
sizes set their durations. On the other devices each layer is the same five commands
as durations: the two GEMMs take `command_us`, the three elementwise ones a few us.
"""

from __future__ import annotations

from collections.abc import Callable

from hal import HwCommand

KINDS = ("spin", "dnn")
DNN_LAYERS = 4
MAX_LAYERS = 64
# a simulated layer, as the CUDA one: (name, duration in us; None: a GEMM of command_us)
_SIM_LAYER = (("layernorm", 5.0), ("gemm_up", None), ("bias_gelu", 5.0), ("gemm_down", None), ("residual", 3.0))

Task = Callable[[], list[HwCommand]]


def spin_task(commands: int, command_us: float) -> Task:
    """`commands` commands of `command_us` each (each call: fresh commands)."""
    return lambda: [HwCommand(command_us) for _ in range(commands)]


def task_of(kind: str, device, *, commands: int, command_us: float, layers: int | None) -> Task:
    """A factory of one task's commands for a queue on `device` (each call: fresh commands)."""
    if kind == "spin":
        return spin_task(commands, command_us)
    if kind != "dnn":
        raise ValueError(f"task kind {kind!r}: choose one of {', '.join(KINDS)}")
    n = DNN_LAYERS if layers is None else layers
    if str(getattr(device, "name", "")).startswith("cuda"):
        from hal.cuda.tasks import TransformerStack

        stack = TransformerStack(layers=n, guarded=True)
        _warm_up(device, stack)
        return stack.commands
    return lambda: [HwCommand(2.0, name="load")] + [
        HwCommand(command_us if us is None else us, name=name) for _ in range(n) for name, us in _SIM_LAYER
    ]


def _warm_up(device, stack) -> None:
    """Run one task plain and one guarded, each on a queue of its own, before any
    scheduling: CUDA loads a kernel's module (the plain one, the instrumented one) on
    first use and may wait for the device to go idle to do it, which a queue deactivated
    at level 2 never does (hal.cuda.hwqueue), so a first use while another queue is
    suspended could wait for that queue, and it for us."""
    for guard in (False, True):
        q = device.create_queue(guard=guard)
        q.plain_budget_us = 0.0  # every guarded launch flushes: its module loads
        try:
            for cmd in stack.commands():
                q.launch(cmd)
            q.synchronize()
        finally:
            q.close()
