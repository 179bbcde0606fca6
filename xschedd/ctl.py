"""xschedctl: look at and steer xschedd from a shell (XSched's XCLI, over the control API).

Exit status: 0 done, 1 other error, 2 bad usage or an argument the daemon refused,
3 no daemon, 4 permission denied, 5 no such XQueue or process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
from google.protobuf.json_format import MessageToDict

from hal.paths import daemon_socket
from preempt.config import SOCKET as SOCKET_ENV, TOKEN as TOKEN_ENV
from xschedd.policy.wire import hint_to_proto
from protos.xsched.v1 import control_pb2 as cpb, control_pb2_grpc, types_pb2 as pb
from xschedd.policy import HintError, policy_names
from xschedd.policy import hints as H

EXIT_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT: 2,
    grpc.StatusCode.UNAVAILABLE: 3,
    grpc.StatusCode.PERMISSION_DENIED: 4,
    grpc.StatusCode.NOT_FOUND: 5,
}
RPC_TIMEOUT_S = 5.0


def xqueue_id(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an XQueue id (e.g. 0x1a2b00000001)") from None
    if not 0 < value < 2**64:
        raise argparse.ArgumentTypeError(f"XQueue id {text} is out of range (1 .. 2**64-1)")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xschedctl", description="Inspect and steer xschedd.")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--socket", type=Path, help=f"daemon socket (default ${SOCKET_ENV} or {daemon_socket()})")
    where.add_argument("--connect", metavar="HOST:PORT", help="daemon over TCP (token from $XSCHED_TOKEN)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    sub = p.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("list", help="list XQueues")
    ls.add_argument("--pid", type=int, default=0)
    sub.add_parser("ps", help="list registered processes")
    top = sub.add_parser("top", help="live view of the XQueues")
    top.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes")
    top.add_argument("--count", type=int, default=0, help="stop after N updates (0: never)")

    cfg = sub.add_parser("config", help="set an XQueue's level, threshold or batch size")
    cfg.add_argument("xqueue", type=xqueue_id)
    cfg.add_argument("--level", type=int)
    cfg.add_argument("--threshold", type=int)
    cfg.add_argument("--batch-size", type=int)

    pol = sub.add_parser("policy", help="query or set the policy")
    what = pol.add_mutually_exclusive_group(required=True)
    what.add_argument("--query", action="store_true")
    what.add_argument("--set", metavar="NAME", type=str.upper, help=", ".join(policy_names()))
    what.add_argument("--gang", choices=["on", "off"], help="per-process gang mode")

    hint = sub.add_parser("hint", help="give a scheduling hint")
    target = hint.add_mutually_exclusive_group()
    target.add_argument("xqueue", nargs="?", type=xqueue_id, help="the XQueue (id)")
    target.add_argument("--pid", type=int, help="every XQueue of this process (or the process)")
    kind = hint.add_mutually_exclusive_group(required=True)
    kind.add_argument("--priority", type=int, help=f"[{H.PRIORITY_NEVER}, {H.PRIORITY_MAX}]")
    kind.add_argument("--utilization", type=int, help="percent [0, 100] (with --pid: the process's share)")
    kind.add_argument("--timeslice", type=int, help=f"us [{H.TIMESLICE_MIN_US}, {H.TIMESLICE_MAX_US}] (global)")
    kind.add_argument("--deadline", type=int, help="us >= 1")
    kind.add_argument("--kdeadline", type=int, help="k >= 1 (global, KEDF)")
    kind.add_argument("--laxity", type=int, help="us >= 1 (with --lax-priority, --crit-priority)")
    kind.add_argument("--window-active", choices=["on", "off"], help="AWF: the process owns the active window")
    hint.add_argument("--lax-priority", type=int, default=H.PRIORITY_DEFAULT)
    hint.add_argument("--crit-priority", type=int, default=H.PRIORITY_DEFAULT)

    for name, help_text in (("suspend", "hold an XQueue suspended"), ("resume", "release a held XQueue")):
        s = sub.add_parser(name, help=help_text)
        s.add_argument("xqueue", type=xqueue_id)
    return p


class CtlError(Exception):
    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def make_hint(args: argparse.Namespace) -> tuple[pb.Hint, int]:
    """The hint message and target pid (0: none) for `xschedctl hint`; HintError if out of range."""
    xq = args.xqueue or 0
    pid = args.pid or 0
    if args.timeslice is not None or args.kdeadline is not None:
        if xq or pid:
            raise CtlError("--timeslice and --kdeadline are global: give no XQueue or --pid")
        hint = H.TimesliceHint(args.timeslice) if args.timeslice is not None else H.KDeadlineHint(args.kdeadline)
        return hint_to_proto(hint), 0
    if args.window_active is not None:
        if not pid:
            raise CtlError("--window-active needs --pid")
        return hint_to_proto(H.WindowActiveHint(pid, args.window_active == "on")), 0
    if args.utilization is not None and pid:
        return hint_to_proto(H.ProcessUtilizationHint(pid, args.utilization)), 0
    if not xq and not pid:
        raise CtlError("give an XQueue id or --pid")
    if args.priority is not None:
        hint = H.PriorityHint(xq, args.priority)
    elif args.utilization is not None:
        hint = H.UtilizationHint(xq, args.utilization)
    elif args.deadline is not None:
        hint = H.DeadlineHint(xq, args.deadline)
    else:
        hint = H.LaxityHint(xq, args.laxity, args.lax_priority, args.crit_priority)
    return hint_to_proto(hint), pid


def _channel(args: argparse.Namespace) -> tuple[grpc.Channel, tuple]:
    token = os.environ.get(TOKEN_ENV)
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    if args.connect:
        return grpc.insecure_channel(args.connect), metadata
    path = args.socket or (Path(os.environ[SOCKET_ENV]) if os.environ.get(SOCKET_ENV) else daemon_socket())
    if not path.exists():
        raise CtlError(f"no xschedd socket at {path}: is the daemon running? (xschedd --socket {path})", 3)
    return grpc.insecure_channel(f"unix:{path}"), metadata


def _dict(msg) -> dict:
    return MessageToDict(msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


STATE = {pb.XQUEUE_STATE_IDLE: "idle", pb.XQUEUE_STATE_READY: "ready"}


def xqueue_table(views) -> Iterator[str]:
    yield f"{'XQUEUE':<18} {'PID':>7} {'NAME':<12} {'STATE':<6} {'SUSP':<5} {'PRIO':>5} {'LV':>2} {'THR':>4} {'BAT':>4} {'TASKS':>7} {'P50ms':>8} {'P99ms':>8}"
    for v in views:
        i = v.info
        susp = "held" if v.held else ("yes" if i.suspended else "no")
        yield (
            f"{i.xqueue_id:#018x} {i.pid:>7} {i.name[:12]:<12} {STATE.get(i.state, '?'):<6} {susp:<5} "
            f"{v.priority:>5} {i.level:>2} {i.threshold:>4} {i.batch_size:>4} {v.busy.count:>7} "
            f"{v.busy.p50_ms:>8.2f} {v.busy.p99_ms:>8.2f}"
        )


def run(args: argparse.Namespace, out=sys.stdout) -> int:
    hint_request = make_hint(args) if args.command == "hint" else None  # validate before connecting
    channel, md = _channel(args)
    stub = control_pb2_grpc.ControlServiceStub(channel)
    call = {"timeout": RPC_TIMEOUT_S, "metadata": md}

    def emit(msg, lines: Iterator[str] | None = None) -> None:
        if args.json or lines is None:
            print(json.dumps(_dict(msg)), file=out, flush=True)
        else:
            for line in lines:
                print(line, file=out)
            out.flush()

    with channel:
        cmd = args.command
        if cmd == "list":
            resp = stub.ListXQueues(cpb.ListXQueuesRequest(pid=args.pid), **call)
            emit(resp, xqueue_table(resp.xqueues))
        elif cmd == "ps":
            resp = stub.ListProcesses(cpb.ListProcessesRequest(), **call)
            emit(resp, (f"{p.pid:>7} uid {p.uid:<6} {len(p.xqueue_ids):>3} XQueue(s)  {p.name}" for p in resp.processes))
        elif cmd == "top":
            return _top(stub, args, md, emit)
        elif cmd == "config":
            cfg = pb.XQueueConfig()
            for name in ("level", "threshold", "batch_size"):
                value = getattr(args, name)
                if value is not None:
                    if value < 1:
                        raise CtlError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
                    setattr(cfg, name, value)
            resp = stub.ConfigXQueue(cpb.ConfigXQueueRequest(xqueue_id=args.xqueue, config=cfg), **call)
            emit(resp, xqueue_table([resp]))
        elif cmd == "policy":
            if args.query:
                resp = stub.GetPolicy(cpb.GetPolicyRequest(), **call)
            elif args.set:
                resp = stub.SetPolicy(cpb.SetPolicyRequest(name=args.set), **call)
            else:
                resp = stub.SetPolicy(cpb.SetPolicyRequest(gang=args.gang == "on"), **call)
            emit(resp, iter([f"{resp.name}{' (gang)' if resp.gang else ''}"]))
        elif cmd == "hint":
            hint, pid = hint_request
            resp = stub.SendHint(cpb.SendHintRequest(hint=hint, pid=pid), **call)
            emit(resp, iter([f"hint given to {len(resp.xqueue_ids)} XQueue(s)" if resp.xqueue_ids else "hint given"]))
        elif cmd in ("suspend", "resume"):
            rpc = stub.SuspendXQueue if cmd == "suspend" else stub.ResumeXQueue
            resp = rpc(cpb.XQueueRequest(xqueue_id=args.xqueue), **call)
            emit(resp, xqueue_table([resp]))
    return 0


def _top(stub, args, md, emit) -> int:
    views: dict[int, object] = {}
    n = 0
    for update in stub.WatchStatus(cpb.WatchStatusRequest(min_interval_ms=int(args.interval * 1000)), metadata=md):
        kind = update.WhichOneof("kind")
        if kind == "snapshot":
            views = {v.info.xqueue_id: v for v in update.snapshot.xqueues}
        else:
            for v in update.delta.changed_xqueues:
                views[v.info.xqueue_id] = v
            for gone in update.delta.removed_xqueues:
                views.pop(gone, None)
        if args.json:
            emit(update)
        else:
            if sys.stdout.isatty():
                print("\033[H\033[2J", end="")
            print(time.strftime("%H:%M:%S"), f"{len(views)} XQueue(s)")
            emit(update, xqueue_table([views[k] for k in sorted(views)]))
        n += 1
        if args.count and n >= args.count:
            return 0
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (CtlError, HintError) as exc:
        print(f"xschedctl: {exc}", file=sys.stderr)
        return getattr(exc, "code", 2)
    except grpc.RpcError as exc:
        code = exc.code()
        details = exc.details() or ""
        if code is grpc.StatusCode.UNAVAILABLE:
            details = f"cannot reach xschedd: {details}"
        print(f"xschedctl: {code.name}: {details}", file=sys.stderr)
        return EXIT_CODES.get(code, 1)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
