"""The exception family of the policy package."""


class PolicyError(Exception):
    """Base of every error raised by xschedd.policy."""


class HintError(PolicyError, ValueError):
    """A hint value outside its allowed range; the message names the value and the range."""


class UnknownPolicyError(PolicyError, ValueError):
    """A policy name that is not one of the known policies."""
