"""Without CuPy, hal.cuda fails clearly and the rest of the project does not need it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_instrument():
    """hal/cuda/instrument.py is pure text work: load it without the package's CuPy check."""
    pkg = types.ModuleType("hal.cuda")
    pkg.__path__ = [str(ROOT / "hal" / "cuda")]
    saved = {k: sys.modules.get(k) for k in ("hal.cuda", "hal.cuda.errors", "hal.cuda.instrument")}
    sys.modules["hal.cuda"] = pkg
    try:
        for name in ("errors", "instrument"):
            spec = importlib.util.spec_from_file_location(f"hal.cuda.{name}", ROOT / "hal" / "cuda" / f"{name}.py")
            mod = importlib.util.module_from_spec(spec)
            sys.modules[f"hal.cuda.{name}"] = mod
            spec.loader.exec_module(mod)
        return mod
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def test_import_without_cupy_raises_a_clear_device_error():
    code = (
        "import sys; sys.modules['cupy'] = None\n"
        "from hal.errors import DeviceError\n"
        "try:\n    import hal.cuda\nexcept DeviceError as e:\n    print('ERR', e)\n"
        "import preempt, xsched_workload.cli, hal\n"
        "assert 'cupy' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "ERR hal.cuda needs CuPy" in out.stdout


def test_open_device_cuda_without_cupy_is_a_device_error():
    code = (
        "import sys; sys.modules['cupy'] = None\n"
        "from hal import open_device, DeviceError\n"
        "try:\n    open_device('cuda:0')\nexcept DeviceError as e:\n    print('ERR', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert "ERR hal.cuda needs CuPy" in out.stdout, out.stderr


SRC = r'''
#include <cuda_fp16.h>
extern "C" __global__ void __launch_bounds__(256) scale(float* __restrict__ y, const float* x, float a, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  y[i] = a * x[i];
}
extern "C" __global__ void other(int* p) { p[blockIdx.y] = gridDim.x; }
'''


def test_instrumenting_a_kernel_keeps_its_body_and_adds_guard_and_relaunch():
    ins = _load_instrument()
    out = ins.instrument(SRC, ["scale"]).source
    assert out.index("#include <cuda_fp16.h>") < out.index("#define blockIdx")
    assert "static __device__ __forceinline__ void __xs_body_scale(float* __restrict__ y" in out
    assert 'extern "C" __global__ void __launch_bounds__(256) scale(float* __restrict__ y, const float* x, float a, int n, const volatile unsigned int* __xs_flag' in out
    assert "scale__xs_fix(" in out
    assert "const volatile unsigned int* __xs_board, unsigned int __xs_level, unsigned int __xs_every" in out
    assert "__xs_b % __xs_every == 0u" in out  # the sentinel, about one block per wave,
    assert "*__xs_host" in out  # reads the host's flag (and a board's word)
    assert "__xs_body_scale(y, x, a, n);" in out
    # with dynamic parallelism a one-thread kernel behind the main launch (its own module,
    # relocatable code: main, fix and pfix stay out of it) tail-launches the gate and (tail
    # mode 2) the GPU's relaunch behind it after a flush, both declared before it; the
    # relaunch flushes too, and then launches the gate and itself again
    tail = out[out.index('void scale__xs_tail('):]
    assert tail.index("if (*(const volatile unsigned int*)__xs_flushed != __xs_epoch) return;") < tail.index("<<<")
    assert "dim3(__xs_bx, __xs_by, __xs_bz), __xs_smem, cudaStreamTailLaunch" in tail
    # parking, a launch is its own ticket: its last block to leave writes the number, and
    # the next one too (its relaunch's) where nothing flushed, or records the refusal
    assert "volatile unsigned long long* __xs_park, unsigned long long __xs_ticket, unsigned long long __xs_ticket2)" in out
    assert "atomicAdd(__xs_left, 1u)" in out and "__xs_whole && __xs_ticket2 != 0ull ? __xs_ticket2 : __xs_ticket" in out
    assert out.index("void __xs_ticket_write(") < out.index("#define blockIdx")
    assert "park[2] = i;" in out and "park[3] = pass;" in out  # the refusal, and the last pass
    # the host's relaunch on a board's ticket gate stops like the GPU's, and opens its gate when whole
    pfix = out[out.index("void __launch_bounds__(256) scale__xs_pfix("):]
    assert "(*__xs_host != 0u || (__xs_board != 0 && __xs_outranked(__xs_board, __xs_level)))" in pfix
    assert "return *board + level < 31u;" in out[: out.index("#define blockIdx")]  # the board's rule, once
    assert "atomicAdd(__xs_flushed + 6, 1u)" in pfix and "__xs_ticket_write(__xs_park" in pfix
    gate, tfix = out.index("void scale__xs_gate("), out.index("void __launch_bounds__(256) scale__xs_tfix(")
    tail_at, main = out.index("void scale__xs_tail("), out.index("void __launch_bounds__(256) scale(")
    assert gate < tfix < tail_at < main
    assert out.count("scale__xs_gate<<<1, 1, 0, cudaStreamTailLaunch>>>(__xs_host, ") == 2
    assert "if (__xs_tail == 2u)" in out and out.count("scale__xs_tfix<<<") == 2
    assert "__xs_round + 1u" in out and "%%globaltimer" in out
    assert "scale__xs_fix<<<" not in out  # the host's relaunch (tail modes 0 and 1)
    assert "<<<" not in out[main:]  # the main launch and the host's relaunches launch nothing
    assert (ins.TAIL_NONE, ins.TAIL_GATE, ins.TAIL_GATE_AND_RELAUNCH) == (0, 1, 2)
    assert out.count(f"#ifdef {ins.TAIL_MACRO}") == 3 and f"-D{ins.TAIL_MACRO}" in ins.TAIL_OPTIONS
    assert out.count(f"#ifndef {ins.TAIL_MACRO}") == 3
    assert 'extern "C" __global__ void other(int* p)' in out  # untouched, still a kernel


def test_the_packed_formats_of_the_extras_match_their_declarations():
    """hal.cuda.launch packs the instrumenter's parameters by these codes: a pointer is P,
    an unsigned int I, an unsigned long long Q; a mismatch would pass garbage to every
    guarded launch."""
    ins = _load_instrument()

    def code(p: str) -> str:
        return "P" if "*" in p else "Q" if p.startswith("unsigned long long ") else "I"

    for decl, fmt in ((ins.MAIN_EXTRA, ins.MAIN_EXTRA_FORMAT), (ins.FIX_EXTRA, ins.FIX_EXTRA_FORMAT),
                      (ins.PFIX_EXTRA, ins.PFIX_EXTRA_FORMAT), (ins.TAIL_EXTRA, ins.TAIL_EXTRA_FORMAT)):
        params = [p.strip() for p in decl.split(",")]
        assert fmt == "".join(code(p) for p in params), decl
        assert all("*" in p or p.startswith(("unsigned int ", "unsigned long long ")) for p in params), decl
    assert (ins.MAIN_EXTRA_FORMAT, ins.FIX_EXTRA_FORMAT) == ("PPPPIPIIPQQ", "PPIIII")
    assert ins.TAIL_EXTRA_FORMAT == "PPIIIIIIIPPIII"
    assert ins.PFIX_EXTRA_FORMAT == "PPIIIIPPIPQQI"


@pytest.mark.parametrize(
    "names, message",
    [(["missing"], "not found"), ([], "at least one")],
)
def test_instrument_names_the_bad_kernel(names, message):
    ins = _load_instrument()
    with pytest.raises(Exception, match=message):
        ins.instrument(SRC, names)


def test_instrument_rejects_unnamed_parameters():
    ins = _load_instrument()
    with pytest.raises(Exception, match="cannot find the name"):
        ins.instrument('extern "C" __global__ void k(int) {}', ["k"])
