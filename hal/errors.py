"""The exception family of the hardware adapters."""


class HalError(Exception):
    """Base of every error raised by hal."""


class UnsupportedLevelError(HalError):
    """A preemption operation above the highest level a hardware queue supports."""


class DeviceError(HalError):
    """A device that cannot be opened or reached, or a bad device name."""


class WouldBlockForever(HalError):
    """A wait in virtual time with no event left that could ever satisfy it."""
