"""The device panel: NVIDIA GPUs from NVML (or "no NVIDIA GPU") and the XPUs XQueues run on."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from hal.sharing import time_sliced
from xsched_tui.devices import DevicesView, GpuRow


def _num(value: float | int | None, fmt: str) -> str:
    return "N/A" if value is None else format(value, fmt)


def _processes(g: GpuRow) -> str:
    """"procs 3 (MPS 2)": compute processes, and how many share the GPU through MPS;
    "procs 2, time-sliced" where the GPU takes turns between their contexts (the rule by
    which suspended level-2 CUDA queues park, hal.sharing)."""
    if g.processes is None:
        return "procs N/A"
    if g.mps_clients:
        return f"procs {g.processes} (MPS {g.mps_clients})"
    if time_sliced(g.processes, g.mps_clients or 0):
        return f"procs {g.processes}, time-sliced"
    return f"procs {g.processes}"


class DevicePanel(Static):
    DEFAULT_CSS = """
    DevicePanel { border: round $primary; padding: 0 1; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__("sampling devices…", **kwargs)
        self._gpus = DevicesView()
        self._xpus: dict[str, int] = {}

    def on_mount(self) -> None:
        self.border_title = "devices"

    def show_gpus(self, view: DevicesView) -> None:
        self._gpus = view
        self._redraw()

    def show_xpus(self, xpus: dict[str, int]) -> None:
        if xpus != self._xpus:
            self._xpus = dict(xpus)
            self._redraw()

    def _redraw(self) -> None:
        text = Text()
        if self._gpus.message:
            text.append(self._gpus.message, style="dim")
        for g in self._gpus.gpus:
            text.append(f"GPU{g.index} {g.name}\n", style="bold")
            mem = (
                "N/A" if g.mem_used_mib is None
                else f"{g.mem_used_mib:.0f}/{_num(g.mem_total_mib, '.0f')} MiB"
            )
            text.append(
                f" util {_num(g.util_percent, '.0f')}%  mem {mem}\n"
                f" sm {_num(g.sm_clock_mhz, 'd')} MHz  mem {_num(g.mem_clock_mhz, 'd')} MHz"
                f"  {_num(g.temperature_c, 'd')}°C\n"
                f" {_processes(g)}"
            )
        if self._xpus:
            text.append("\nXPUs: ")
            text.append(", ".join(f"{d} ({n} XQueues)" for d, n in self._xpus.items()))
        self.update(text)
