"""Source-level instrumentation of CUDA kernels for level-2 (flushing) preemption.

Pure text work, no CuPy: each named `extern "C" __global__` kernel becomes a device
function (its body, with `blockIdx`/`gridDim` read from shared memory) plus three kernels
that the host launches (`#ifndef TAIL_MACRO`) and three that exist only in a second
compile with dynamic parallelism (`TAIL_OPTIONS`, relocatable device code):

- `NAME` (guarded main launch): thread 0 of each block reads the queue's deactivation
  state once into shared memory; a block that sees it set records the launch as
  flushed and exits without running the body; others mark themselves done in the
  per-queue state array (`state[block] = epoch`) and run the body. The host sets the
  deactivation flag in pinned host memory (`host`, a plain store: no driver call), but
  reads of host memory cross PCIe, so only every `every`-th block (about one per wave)
  reads it: such a sentinel copies it to `flag[0]` in device memory, and with a
  priority board (hal.board) also reads the board word and sets the latch `flag[1]`
  when a higher level is active; every other block reads `flag[0] | flag[1]` from L2.
  So a kernel flushes within about a wave of a suspend, or of another process's urgent
  launch. Given a ticket gate (`__xs_park`, hal.cuda.gate.TicketGate), the launch is
  its own ticket (hal.cuda.hwqueue passes it for launches of a few waves: counting
  costs each block ~0.7 us): each block counts itself out (`__xs_flushed[4]`), and the last one
  writes `__xs_ticket` to the gate's word unless the queue is deactivated (the word
  after it) or outranked on the board (then it records the number as refused), so the
  stream's wait passes with no ticket kernel behind the launch; where no block flushed
  it writes `__xs_ticket2`, the hold behind the relaunch, at once (`NAME__xs_pfix`).
- `NAME__xs_fix` (the relaunch): a grid of at most one wave that returns at once unless
  the launch was flushed, and otherwise runs exactly the blocks whose state is not
  `epoch`, each with its original block index. Blocks must be independent (no
  inter-block communication within one launch); they need not be idempotent.
- `NAME__xs_pfix` (the host's relaunch that stops, on a board's ticket gate): the
  relaunch of an outranked queue, which a higher level's return (or a suspend) stops
  like the main kernel: one block every 4 us (a compare-and-swap of the last read's
  %globaltimer stamp, as in `NAME__xs_tfix` below) reads the host word and the board,
  and once either says stop no block starts. Its last block out opens the hold behind
  it, or records the refusal (`__xs_ticket_write`, `TICKET_PROTOCOL`), and
  `NAME__xs_fix` behind that hold runs what is left. Where every block ran it clears
  the "flushed" mark, so that relaunch returns at once; where the main launch flushed
  nothing, it only opens the hold (the main launch's ticket already did, `__xs_ticket2`).
  With `__xs_whole` it is the launch itself (hal.cuda.hwqueue: long launches of an
  outranked queue): one wave looping over every block, so a stop leaves no blocks to
  start and retire, as a flushed grid does; done, it opens the next hold too
  (`__xs_ticket2`), and stopped, it marks the launch flushed for the relaunches behind.
- `NAME__xs_tail`, `NAME__xs_gate` and `NAME__xs_tfix` (only with `TAIL_OPTIONS`): the
  gate and the relaunch, launched by the GPU itself and only for a launch that flushed.
  The host launches the one-thread `NAME__xs_tail` behind each main launch; it returns
  at once unless the launch flushed (the "flushed" mark holds its epoch), and otherwise
  tail-launches the one-thread gate, which naps while the host word is set, and, with
  `__xs_tail` 2, the relaunch behind it (tail launches of one grid run in order, and a
  kernel is not complete until its tail launches are, so the next command waits). An
  undisturbed guarded launch is then the main kernel and a one-thread kernel: on the
  H100's 8-layer stack at threshold 8, +3.5-5.4% against +9.0-9.7% with the host's
  relaunch behind every launch (four runs, when the main kernel launched the gate
  itself). The main kernel does not launch them itself, since relocatable code costs
  every kernel compiled with it: the stack's tiled GEMM took 63 registers and 16 bytes
  of stack with `-rdc=true` (even with no launch in it) against 48 and none without,
  and the stack ran 2-3 points slower (docs/h100-benchmarks.md, "Relocatable code out
  of the main kernel"). The GPU's relaunch is itself preemptible, unlike the host's: a
  grid launched from the device can run slower (2.0x for 16 blocks of 128 threads per
  SM on the H100, 1.01-1.02x for 32-, 256- and 1,024-thread blocks), which would leave
  a long relaunch in the way of the next suspend.
  So before each block it runs, it reads the device's copy of the host word, which one
  block (whichever wins a compare-and-swap of the last read's %globaltimer stamp)
  refreshes from the host every 4 us; a deactivated relaunch's first block to see it
  launches the gate and a relaunch of what is left again (a round counter elects it).
  With `__xs_tail` 1 the relaunch is `NAME__xs_fix`, the host's, behind every launch;
  with 0 (a ticket gate, or no device runtime) the gate is the host's too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hal.board import LEVELS
from hal.cuda.errors import GuardError

FIX_SUFFIX = "__xs_fix"
MAIN_EXTRA = ("const volatile unsigned int* __xs_flag, const volatile unsigned int* __xs_host, unsigned int* __xs_state, "
              "unsigned int* __xs_flushed, unsigned int __xs_epoch, "
              "const volatile unsigned int* __xs_board, unsigned int __xs_level, unsigned int __xs_every, "
              "volatile unsigned long long* __xs_park, "
              "unsigned long long __xs_ticket, unsigned long long __xs_ticket2")  # fmt: skip
FIX_EXTRA = ("unsigned int* __xs_state, const unsigned int* __xs_flushed, unsigned int __xs_epoch, "
             "unsigned int __xs_gx, unsigned int __xs_gy, unsigned int __xs_gz")  # fmt: skip
PFIX_SUFFIX = "__xs_pfix"
PFIX_EXTRA = ("unsigned int* __xs_state, unsigned int* __xs_flushed, unsigned int __xs_epoch, "
              "unsigned int __xs_gx, unsigned int __xs_gy, unsigned int __xs_gz, const volatile unsigned int* __xs_host, "
              "const volatile unsigned int* __xs_board, unsigned int __xs_level, volatile unsigned long long* __xs_park, "
              "unsigned long long __xs_ticket, unsigned long long __xs_ticket2, unsigned int __xs_whole")  # fmt: skip


def _struct_codes(params: str) -> str:
    """The struct codes (hal.cuda.launch) of extra parameters: a pointer P, an unsigned int I,
    an unsigned long long Q."""
    codes = []
    for p in params.split(","):
        p = p.strip()
        if "*" in p:
            codes.append("P")
        elif p.startswith("unsigned int "):
            codes.append("I")
        elif p.startswith("unsigned long long "):
            codes.append("Q")
        else:
            raise GuardError(
                f"extra parameter {p!r}: only pointers, unsigned ints and unsigned long longs are packed"
            )
    return "".join(codes)


MAIN_EXTRA_FORMAT = _struct_codes(MAIN_EXTRA)
FIX_EXTRA_FORMAT = _struct_codes(FIX_EXTRA)
PFIX_EXTRA_FORMAT = _struct_codes(PFIX_EXTRA)
GATE_SUFFIX = "__xs_gate"
TFIX_SUFFIX = "__xs_tfix"
TAIL_SUFFIX = "__xs_tail"
TAIL_EXTRA = ("unsigned int* __xs_state, unsigned int* __xs_flushed, unsigned int __xs_epoch, "
              "unsigned int __xs_gx, unsigned int __xs_gy, unsigned int __xs_gz, "
              "unsigned int __xs_bx, unsigned int __xs_by, unsigned int __xs_bz, "
              "const volatile unsigned int* __xs_host, unsigned int* __xs_flag, unsigned int __xs_every, "
              "unsigned int __xs_smem, unsigned int __xs_tail")  # fmt: skip
TAIL_EXTRA_FORMAT = _struct_codes(TAIL_EXTRA)
# __xs_tail: what a flushed launch tail-launches from the GPU
TAIL_NONE, TAIL_GATE, TAIL_GATE_AND_RELAUNCH = 0, 1, 2
TAIL_MACRO = "XS_TAIL_LAUNCH"
# relocatable device code, linked with the device runtime (CuPy links cudadevrt for -rdc)
TAIL_OPTIONS = ("-rdc=true", f"-D{TAIL_MACRO}")

# The ticket protocol (hal.cuda.gate.TicketGate) on the device. `park`: the gate's words in
# pinned host memory: [0] the ticket word (the stream may pass the holds numbered up to
# it), the low half of [1] "off" (the queue is deactivated), [2] the last ticket refused,
# [3] the last number a writer let the stream past (the host's release repairs [0] with it).
TICKET_PROTOCOL = """
// whether a level above `level` is active on the priority board (hal.board.may_run's rule)
static __device__ __forceinline__ bool __xs_outranked(const volatile unsigned int* board, unsigned int level) {
  return *board + level < TOPu;
}
static __device__ __forceinline__ bool __xs_may_pass(const volatile unsigned long long* park,
                                                     const volatile unsigned int* board, unsigned int level) {
  return ((const volatile unsigned int*)park)[2] == 0u && (board == 0 || !__xs_outranked(board, level));
}
// Let the stream past hold `i` (and those up to `pass`) if `go` and the queue may pass; else
// record `i` as refused, which the host's release lets past, and look again: a release
// that looked before the record would not see it.
static __device__ __forceinline__ void __xs_ticket_write(volatile unsigned long long* park,
    const volatile unsigned int* board, unsigned int level, unsigned long long i, unsigned long long pass, bool go) {
  if (!go || !__xs_may_pass(park, board, level)) {
    park[2] = i;
    __threadfence_system();
    if (!__xs_may_pass(park, board, level)) return;
  }
  park[3] = pass;
  park[0] = pass;
  __threadfence_system();
}
""".replace("TOP", str(LEVELS - 1))

_PRELUDE = """\
// --- xsched guard prelude: the body sees its logical block index through shared memory
__shared__ uint3 __xs_bid;
__shared__ uint3 __xs_grid;
// a relaunch's thread 0: the body runs logical block `b` of a grid `gx` x `gy` x `gz` next
static __device__ __forceinline__ void __xs_enter(unsigned int b, unsigned int gx, unsigned int gy, unsigned int gz) {
  __xs_bid = make_uint3(b % gx, (b / gx) % gy, b / (gx * gy));
  __xs_grid = make_uint3(gx, gy, gz);
}
// whether this block is the one, at most every 4 us, to read host memory for a relaunch
// (a compare-and-swap of the last read's %globaltimer stamp, words 2-3 of `flushed`)
static __device__ __forceinline__ bool __xs_elected(unsigned int* flushed) {
  volatile unsigned long long* seen = (volatile unsigned long long*)(flushed + 2);
  unsigned long long now, old = *seen;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  return (long long)(now - old) > 4000ll && atomicCAS((unsigned long long*)seen, old, now) == old;
}
#define blockIdx __xs_bid
#define gridDim __xs_grid
"""

_MAIN = """
#ifndef {tail_macro}
extern "C" __global__ void {bounds}{name}({params}{sep}{extra}) {{
  __shared__ int __xs_skip;
  if (threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0) {{
    unsigned int __xs_b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    int __xs_f;
    if (__xs_b % __xs_every == 0u) {{
      unsigned int __xs_h = *__xs_host != 0u, __xs_y;
      ((volatile unsigned int*)__xs_flag)[0] = __xs_h;
      if (__xs_board != 0) {{
        __xs_y = __xs_outranked(__xs_board, __xs_level);
        ((volatile unsigned int*)__xs_flag)[1] = __xs_y;
      }} else {{
        __xs_y = __xs_flag[1] != 0u;
      }}
      __xs_f = __xs_h || __xs_y;
    }} else {{
      __xs_f = (__xs_flag[0] | __xs_flag[1]) != 0u;
    }}
    if (!__xs_f) __xs_state[__xs_b] = __xs_epoch;
    else if (*(volatile unsigned int*)__xs_flushed != __xs_epoch)  // a read first: stores to one word serialise in L2
      *(volatile unsigned int*)__xs_flushed = __xs_epoch;  // flushed: `NAME__xs_tail` behind looks
    __xs_skip = __xs_f;
    __xs_bid = blockIdx;
    __xs_grid = make_uint3(gridDim.x, gridDim.y, gridDim.z);
  }}
  __syncthreads();
  const bool __xs_first = threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0;
  if (!__xs_skip) {{
    __xs_body_{name}({args});
    if (__xs_park == 0) return;
    __syncthreads();
  }}
  if (__xs_park == 0 || !__xs_first) return;
  // The ticket (hal.cuda.gate.TicketGate): the last block to leave lets the stream past
  // its wait unless the queue is deactivated, or outranked on the board (then it records
  // the refusal for the host).
  __threadfence();
  unsigned int* __xs_left = __xs_flushed + 4;
  if (atomicAdd(__xs_left, 1u) != gridDim.x * gridDim.y * gridDim.z - 1u) return;
  *(volatile unsigned int*)__xs_left = 0u;  // the next launch counts from 0
  // nothing flushed: the relaunch's own gate (`__xs_ticket2`, hal.cuda.hwqueue) has nothing to hold
  const bool __xs_whole = *(volatile unsigned int*)__xs_flushed != __xs_epoch;
  __xs_ticket_write(__xs_park, __xs_board, __xs_level, __xs_ticket,
                    __xs_whole && __xs_ticket2 != 0ull ? __xs_ticket2 : __xs_ticket, true);
}}
#endif
"""

_TAIL = """
#ifdef {tail_macro}
extern "C" __global__ void {name}{tail_suffix}({params}{sep}{tail_extra}) {{
  if (*(const volatile unsigned int*)__xs_flushed != __xs_epoch) return;  // the launch ran whole
  {name}{gate_suffix}<<<1, 1, 0, cudaStreamTailLaunch>>>(__xs_host, __xs_flag);
  if (cudaGetLastError() != cudaSuccess) __trap();  // never a relaunch ahead of the gate
  if (__xs_tail == 2u) {{  // and the relaunch, behind the gate
    {name}{tfix_suffix}<<<__xs_every, dim3(__xs_bx, __xs_by, __xs_bz), __xs_smem, cudaStreamTailLaunch>>>({args}{sep}
        __xs_state, __xs_flushed, __xs_epoch, __xs_gx, __xs_gy, __xs_gz, __xs_host, __xs_flag, __xs_smem,
        ((volatile unsigned int*)__xs_flushed)[1]);
    if (cudaGetLastError() != cudaSuccess) __trap();
  }}
}}
#endif
"""

_FIX = """
#ifndef {tail_macro}
extern "C" __global__ void {bounds}{name}{suffix}({params}{sep}{extra}) {{
  __shared__ int __xs_run;
  if (*(const volatile unsigned int*)__xs_flushed != __xs_epoch) return;
  const unsigned int __xs_n = __xs_gx * __xs_gy * __xs_gz;
  for (unsigned int __xs_b = blockIdx.x; __xs_b < __xs_n; __xs_b += gridDim.x) {{
    if (threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0) {{
      int __xs_r = __xs_state[__xs_b] != __xs_epoch;
      if (__xs_r) {{
        __xs_state[__xs_b] = __xs_epoch;
        __xs_enter(__xs_b, __xs_gx, __xs_gy, __xs_gz);
      }}
      __xs_run = __xs_r;
    }}
    __syncthreads();
    if (__xs_run) __xs_body_{name}({args});
    __syncthreads();
  }}
}}
#endif
"""

_PFIX = """
#ifndef {tail_macro}
extern "C" __global__ void {bounds}{name}{pfix_suffix}({params}{sep}{extra}) {{
  __shared__ int __xs_run;
  volatile unsigned int* __xs_fl = __xs_flushed;
  const bool __xs_first = threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0;
  if (!__xs_whole && __xs_fl[0] != __xs_epoch) {{  // nothing flushed: only the gate behind it to open
    if (__xs_first && blockIdx.x == 0) __xs_ticket_write(__xs_park, __xs_board, __xs_level, __xs_ticket, __xs_ticket2, true);
    return;
  }}
  const unsigned int __xs_n = __xs_gx * __xs_gy * __xs_gz;
  for (unsigned int __xs_b = blockIdx.x; __xs_b < __xs_n; __xs_b += gridDim.x) {{
    if (__xs_first) {{
      int __xs_r = __xs_state[__xs_b] != __xs_epoch;
      if (__xs_r) {{  // the host word and the board, read by one block every 4 us
        if (__xs_elected(__xs_flushed) && (*__xs_host != 0u || (__xs_board != 0 && __xs_outranked(__xs_board, __xs_level))))
          __xs_fl[5] = __xs_epoch;  // stopped: what is left waits at the gate behind
        if (__xs_fl[5] == __xs_epoch) {{
          __xs_r = -1;
        }} else {{
          __xs_state[__xs_b] = __xs_epoch;
          __xs_enter(__xs_b, __xs_gx, __xs_gy, __xs_gz);
        }}
      }}
      __xs_run = __xs_r;
    }}
    __syncthreads();
    const int __xs_go = __xs_run;
    if (__xs_go < 0) break;
    if (__xs_go) __xs_body_{name}({args});
    __syncthreads();
  }}
  if (!__xs_first) return;
  __threadfence();
  if (atomicAdd(__xs_flushed + 6, 1u) != gridDim.x - 1u) return;
  __xs_fl[6] = 0u;  // the next relaunch counts from 0
  const bool __xs_done = __xs_fl[5] != __xs_epoch;
  __xs_fl[5] = 0u;  // a relaunch behind the gate, of this epoch, starts unstopped
  // every block ran: the relaunches behind the gate return at once; else they run the rest
  __xs_fl[0] = __xs_done ? 0u : __xs_epoch;
  __threadfence();
  __xs_ticket_write(__xs_park, __xs_board, __xs_level, __xs_ticket, __xs_done ? __xs_ticket2 : __xs_ticket, __xs_done);
}}
#endif
"""

_GATE = """
#ifdef {tail_macro}
extern "C" __global__ void {name}{gate_suffix}(const volatile unsigned int* __xs_host, volatile unsigned int* __xs_flag) {{
  while (*__xs_host != 0u) __nanosleep(2000);
  __xs_flag[0] = 0u;  // the next kernel runs whole
}}
#endif
"""

_TFIX = """
#ifdef {tail_macro}
extern "C" __global__ void {bounds}{name}{tfix_suffix}({params}{sep}unsigned int* __xs_state, unsigned int* __xs_flushed,
    unsigned int __xs_epoch, unsigned int __xs_gx, unsigned int __xs_gy, unsigned int __xs_gz,
    const volatile unsigned int* __xs_host, unsigned int* __xs_flag, unsigned int __xs_smem, unsigned int __xs_round) {{
  __shared__ int __xs_run;
  const unsigned int __xs_n = __xs_gx * __xs_gy * __xs_gz;
  for (unsigned int __xs_b = blockIdx.x; __xs_b < __xs_n; __xs_b += gridDim.x) {{
    if (threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0) {{
      int __xs_r = __xs_state[__xs_b] != __xs_epoch;
      if (__xs_r && __xs_elected(__xs_flushed))  // the device's copy of the host word, refreshed every 4 us
        ((volatile unsigned int*)__xs_flag)[0] = *__xs_host != 0u;
      if (__xs_r && ((volatile unsigned int*)__xs_flag)[0] != 0u) {{
        __xs_r = -1;  // deactivated: what is left goes to the next relaunch, behind the next gate
        if (atomicCAS(__xs_flushed + 1, __xs_round, __xs_round + 1u) == __xs_round) {{
          {name}{gate_suffix}<<<1, 1, 0, cudaStreamTailLaunch>>>(__xs_host, (volatile unsigned int*)__xs_flag);
          if (cudaGetLastError() != cudaSuccess) __trap();
          {name}{tfix_suffix}<<<gridDim.x, blockDim, __xs_smem, cudaStreamTailLaunch>>>({args}{sep}__xs_state,
              __xs_flushed, __xs_epoch, __xs_gx, __xs_gy, __xs_gz, __xs_host, __xs_flag, __xs_smem, __xs_round + 1u);
          if (cudaGetLastError() != cudaSuccess) __trap();
        }}
      }} else if (__xs_r) {{
        __xs_state[__xs_b] = __xs_epoch;
        __xs_enter(__xs_b, __xs_gx, __xs_gy, __xs_gz);
      }}
      __xs_run = __xs_r;
    }}
    __syncthreads();
    const int __xs_go = __xs_run;
    if (__xs_go < 0) return;
    if (__xs_go) __xs_body_{name}({args});
    __syncthreads();
  }}
}}
#endif
"""

_BOUNDS = r"(?:__launch_bounds__\s*\([^)]*\)\s*)?"


@dataclass(frozen=True)
class Instrumented:
    source: str
    kernels: tuple[str, ...]

    def fix_name(self, name: str) -> str:
        return name + FIX_SUFFIX

    def pfix_name(self, name: str) -> str:
        return name + PFIX_SUFFIX


def _matching(text: str, start: int, open_: str, close: str) -> int:
    """Index of the bracket closing the one at `start`."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == open_:
            depth += 1
        elif text[i] == close:
            depth -= 1
            if depth == 0:
                return i
    raise GuardError(f"unbalanced {open_!r} at offset {start}")


def _split_params(params: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in params:
        if ch in "<([":
            depth += 1
        elif ch in ">)]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    last = "".join(cur).strip()
    if last and last != "void":
        parts.append(last)
    return parts


def _param_name(param: str) -> str:
    names = re.findall(r"[A-Za-z_]\w*", param.split("=")[0])
    if not names or names[-1] in {"const", "unsigned", "int", "float", "double", "char", "void"}:
        raise GuardError(f"cannot find the name of kernel parameter {param!r}")
    return names[-1]


def instrument(source: str, names: list[str] | tuple[str, ...]) -> Instrumented:
    """Instrument the kernels `names` of `source` (see the module docstring)."""
    if not names:
        raise GuardError("instrument() needs at least one kernel name")
    includes = [ln for ln in source.splitlines() if ln.lstrip().startswith("#include")]
    body = "\n".join(ln for ln in source.splitlines() if not ln.lstrip().startswith("#include"))
    wrappers = []
    for name in names:
        pat = re.compile(
            rf'extern\s+"C"\s+__global__\s+({_BOUNDS})void\s+({_BOUNDS}){re.escape(name)}\s*\('
        )
        m = pat.search(body)
        if m is None:
            raise GuardError(f'kernel {name!r} not found as `extern "C" __global__ void {name}(...)`')
        if pat.search(body, m.end()) is not None:
            raise GuardError(f"kernel {name!r} is defined twice")
        close = _matching(body, m.end() - 1, "(", ")")
        params = body[m.end() : close].strip()
        rest = body[close + 1 :]
        if not rest.lstrip().startswith("{"):
            raise GuardError(f"kernel {name!r}: expected its body after the parameter list")
        bounds = (m.group(1) + m.group(2)).strip()
        plist = _split_params(params)
        args = ", ".join(_param_name(p) for p in plist)
        header = f"static __device__ __forceinline__ void __xs_body_{name}({params})"
        body = body[: m.start()] + header + rest
        fmt = dict(
            name=name,
            bounds=f"{bounds} " if bounds else "",
            params=", ".join(plist),
            sep=", " if plist else "",
            args=args,
            suffix=FIX_SUFFIX,
            pfix_suffix=PFIX_SUFFIX,
            gate_suffix=GATE_SUFFIX,
            tfix_suffix=TFIX_SUFFIX,
            tail_macro=TAIL_MACRO,
            tail_suffix=TAIL_SUFFIX,
            tail_extra=TAIL_EXTRA,
        )
        wrappers.append(_GATE.format(**fmt))  # declared before the launches that name them
        wrappers.append(_TFIX.format(**fmt))
        wrappers.append(_TAIL.format(**fmt))
        wrappers.append(_MAIN.format(extra=MAIN_EXTRA, **fmt))
        wrappers.append(_FIX.format(extra=FIX_EXTRA, **fmt))
        wrappers.append(_PFIX.format(extra=PFIX_EXTRA, **fmt))
    out = "\n".join([*includes, TICKET_PROTOCOL, _PRELUDE, body, "#undef blockIdx", "#undef gridDim", *wrappers])
    return Instrumented(out, tuple(names))
