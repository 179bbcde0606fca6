"""The `xschedd` console script: parse options, set up logging, run `serve()`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from xschedd.auth import group_id
from xschedd.cpu_latency import MAX_US
from xschedd.daemon import DEFAULT_LEASE_S
from xschedd.errors import DaemonError
from xschedd.policy import policy_names
from xschedd.server import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DaemonConfig,
    default_socket,
    default_state_dir,
    serve,
)

TOKEN_ENV = "XSCHEDD_TOKEN"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xschedd",
        description="The XSched global scheduler daemon: schedules the XQueues of every "
        "process that runs with XSCHED_SCHEDULER=GLB.",
    )
    p.add_argument("--socket", type=Path, help=f"Unix socket to serve (default {default_socket()})")
    p.add_argument("--listen", metavar="HOST:PORT", help="also serve TCP (off by default)")
    p.add_argument("--policy", default="HPF", type=str.upper, choices=policy_names(),
                   help="initial policy (a policy saved in the state dir wins)")
    p.add_argument("--gang", action="store_true", help="per-process gang scheduling")
    p.add_argument("--state-dir", type=Path, help=f"where policy and hints persist (default {default_state_dir()})")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on 127.0.0.1:PORT")
    p.add_argument("--lease-s", type=float, default=DEFAULT_LEASE_S,
                   help="agents resume their XQueues after this much silence (s)")
    p.add_argument("--admin-group", help="members may change the policy and touch every XQueue")
    p.add_argument("--socket-group", help="group owner of the socket (mode 0660)")
    p.add_argument("--allow-remote", action="store_true",
                   help=f"accept non-loopback TCP peers that present the token (${TOKEN_ENV} or --token-file)")
    p.add_argument("--token-file", type=Path, help="file holding the token for TCP peers")
    p.add_argument("--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES)
    p.add_argument("--max-connections", type=int, default=1024)
    p.add_argument("--cpu-latency-us", type=int, metavar="US",
                   help="while serving, keep every CPU able to wake within US microseconds "
                   "(Linux PM QoS, /dev/cpu_dma_latency; needs root): cuts the wake-ups on a "
                   "suspend's path, at the cost of idle CPUs polling (0: never sleep)")
    p.add_argument("--log-level", default="INFO", type=str.upper,
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s xschedd %(levelname)s %(name)s: %(message)s")
    token = os.environ.get(TOKEN_ENV)
    if args.token_file is not None:
        try:
            token = args.token_file.read_text().strip()
        except OSError as exc:
            parser.error(f"--token-file: {exc}")
    if args.allow_remote and not token:
        parser.error(f"--allow-remote needs a token: --token-file or ${TOKEN_ENV}")
    if args.lease_s <= 0:
        parser.error(f"--lease-s must be > 0, got {args.lease_s}")
    if args.cpu_latency_us is not None and not 0 <= args.cpu_latency_us <= MAX_US:
        parser.error(f"--cpu-latency-us must be 0..{MAX_US}, got {args.cpu_latency_us}")
    try:
        admin_group = group_id(args.admin_group) if args.admin_group else None
        socket_group = group_id(args.socket_group) if args.socket_group else None
    except KeyError as exc:
        parser.error(f"unknown group {exc}")
    config = DaemonConfig(
        socket=(args.socket or default_socket()).absolute(),
        state_dir=(args.state_dir or default_state_dir()).absolute(),
        policy=args.policy,
        gang=args.gang,
        listen=args.listen,
        metrics_port=args.metrics_port,
        lease_s=args.lease_s,
        admin_group=admin_group,
        socket_group=socket_group,
        allow_remote=args.allow_remote,
        token=token,
        max_message_bytes=args.max_message_bytes,
        max_connections=args.max_connections,
        cpu_latency_us=args.cpu_latency_us,
    )
    try:
        return asyncio.run(serve(config))
    except DaemonError as exc:
        print(f"xschedd: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"xschedd: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
