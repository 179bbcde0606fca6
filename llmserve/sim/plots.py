"""PNG plots of simulation results (matplotlib, Agg backend): TTFT over request index per
policy, and KV usage over time."""

from __future__ import annotations

from collections.abc import Sequence as Seq
from pathlib import Path

from llmserve.errors import LLMServeError
from llmserve.sim.simulator import SimResult

# Distinct dashes and markers, so that policies that behave alike stay visible.
_STYLES = (("-", "o"), ("--", "s"), ("-.", "^"), (":", "D"))


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise LLMServeError("plots need matplotlib: pip install matplotlib") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: str | Path) -> Path:
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_ttft(results: Seq[SimResult], path: str | Path, clock: str = "virtual time") -> Path:
    """TTFT (s) of every finished request over its index in the workload, one series per
    policy; rejected requests are marked on the x axis."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for k, res in enumerate(results):
        dash, marker = _STYLES[k % len(_STYLES)]
        done = [(r.index, r.ttft_s) for r in res.records if r.finished and r.ttft_s is not None]
        (line,) = ax.plot(
            [i for i, _ in done],
            [t for _, t in done],
            linestyle=dash,
            marker=marker,
            ms=3,
            lw=1,
            label=res.policy,
        )
        rejected = [r.index for r in res.records if r.rejected is not None]
        if rejected:
            ax.plot(
                rejected,
                [0.0] * len(rejected),
                "x",
                color=line.get_color(),
                ms=6,
                label=f"{res.policy} rejected",
            )
    ax.set_xlabel("request index (workload order)")
    ax.set_ylabel(f"TTFT (s, {clock})")
    ax.set_title("Time to first token per request")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(plt, fig, path)


def plot_kv(results: Seq[SimResult], path: str | Path, clock: str = "virtual") -> Path:
    """GPU KV usage (%) and blocks swapped to host over virtual time, one line per policy."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for k, res in enumerate(results):
        dash, _ = _STYLES[k % len(_STYLES)]
        tl = res.kv_timeline
        t = [s.t - res.start_s for s in tl]
        used = [100.0 * s.gpu_used / s.gpu_total for s in tl]
        top.step(t, used, where="post", lw=1, linestyle=dash, label=res.policy)
        host = [s.host_used for s in tl]
        bottom.step(t, host, where="post", lw=1, linestyle=dash, label=res.policy)
    top.set_ylabel("GPU KV blocks used (%)")
    top.set_ylim(0, 105)
    top.set_title("KV cache usage over time")
    bottom.set_ylabel("blocks swapped to host")
    bottom.set_xlabel(f"time since first arrival (s, {clock})")
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
        ax.legend()
    return _save(plt, fig, path)
