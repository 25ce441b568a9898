"""One exception tree for every device family (python-can's ``CanError`` idea).

``retryable`` splits "try again later" from "give up" (Home Assistant's ``ConfigEntryNotReady``
versus ``ConfigEntryError``): callers decide on the class attribute, never on message text.
"""

from __future__ import annotations


class DeviceError(Exception):
    """A device could not do what was asked."""

    retryable: bool = False


class DeviceTimeoutError(DeviceError, TimeoutError):
    """The device did not answer in time; it may answer next time."""

    retryable = True


class DeviceProtocolError(DeviceError):
    """The device answered something the driver cannot understand."""

    retryable = False


class DeviceReportedError(DeviceError):
    """The device understood and refused (an alarm, an error code)."""

    retryable = False


class DeviceUnavailableError(DeviceError):
    """The device is not there (unplugged, port gone, powered off)."""

    retryable = True
