"""The exception family of the daemon; servicers map each to one gRPC status code."""


class DaemonError(Exception):
    """Base of every error raised by the xschedd daemon and its clients."""


class InvalidArgument(DaemonError, ValueError):
    """A request whose values are out of range or malformed; the message says which."""


class NotFound(DaemonError, LookupError):
    """An XQueue id or pid the daemon does not know."""


class PermissionDenied(DaemonError, PermissionError):
    """The caller may not do this (another user's queues, or an admin-only change)."""


class AlreadyRunning(DaemonError):
    """A live daemon already owns the socket."""


class AgentUnavailable(DaemonError):
    """The agent owning an XQueue did not answer an operation in time, or went away."""


class OperationRefused(DaemonError):
    """The agent tried an operation and its XQueue refused it (e.g. level above its max)."""
