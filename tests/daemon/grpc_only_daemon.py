"""xschedd as it was before the native agent stream (stop 7): its public socket relays
every connection to gRPC, so an agent's native stream is dropped by the gRPC server.

Run as `python -m tests.daemon.grpc_only_daemon` with xschedd's arguments.
"""

from __future__ import annotations

import sys

from xschedd import relay
from xschedd.cli import main

_init = relay.PeerCredProxy.__init__


def _grpc_only(self, *args, **kwargs) -> None:
    kwargs["native"] = None
    _init(self, *args, **kwargs)


relay.PeerCredProxy.__init__ = _grpc_only  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
