"""Personal values out of log lines: a registry of known values and a logging filter.

Engraving texts and gift messages are never logged on purpose (the code logs ids and reasons).
This is the second line: whatever a log record carries - its message, its arguments, an
exception text a library formatted with the input in it - is searched for the values the
process knows to be personal, and each is replaced with ``[redacted]``. The hub registers the
texts of the orders it holds; the agent those of the assignments it receives.

Values shorter than :data:`MIN_LENGTH` are not registered: redacting every "Jo" in every line
would make logs unreadable, and two letters identify nobody.

Stdlib only: the hub and the agent both install it (they never import each other).
"""

from __future__ import annotations

import json
import logging
import threading
import traceback
from collections import OrderedDict
from collections.abc import Iterable

REDACTED = "[redacted]"
MIN_LENGTH = 3
MAX_VALUES = 20_000  # the oldest are forgotten first; a day of a busy floor is a few thousand


class PersonalValues:
    """The values to redact, most recent last; safe to use from several threads."""

    def __init__(self, max_values: int = MAX_VALUES) -> None:
        self._values: OrderedDict[str, None] = OrderedDict()
        self._max = max_values
        self._lock = threading.Lock()
        self._snapshot: tuple[str, ...] = ()

    def add(self, *values: str | None) -> None:
        """Remember ``values`` (and their JSON-escaped spelling, as payload dumps show them)."""
        with self._lock:
            for value in values:
                for form in _spellings(value):
                    self._values[form] = None
                    self._values.move_to_end(form)
            while len(self._values) > self._max:
                self._values.popitem(last=False)
            # Longest first, so "Anna & Ben" goes before its part "Anna".
            self._snapshot = tuple(sorted(self._values, key=len, reverse=True))

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._snapshot = ()

    def __len__(self) -> int:
        return len(self._snapshot)

    def redact(self, text: str) -> str:
        """``text`` with every known value replaced by :data:`REDACTED`."""
        for value in self._snapshot:
            if value in text:
                text = text.replace(value, REDACTED)
        return text


def _spellings(value: str | None) -> Iterable[str]:
    if value is None:
        return ()
    value = value.strip()
    if len(value) < MIN_LENGTH:
        return ()
    escaped = json.dumps(value)[1:-1]  # non-ASCII as \u escapes, quotes escaped
    return {value, escaped, repr(value)[1:-1]}


KNOWN = PersonalValues()
"""The process's registry: hub and agent add to it, the filter reads it."""


class RedactingFilter(logging.Filter):
    """Replaces known personal values in a record's message and exception text.

    Installed on handlers (a logger's filters do not see records of its child loggers).
    """

    def __init__(self, values: PersonalValues = KNOWN) -> None:
        super().__init__()
        self.values = values

    def filter(self, record: logging.LogRecord) -> bool:
        if not len(self.values):
            return True
        message = record.getMessage()
        cleaned = self.values.redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info))
            if self.values.redact(text) != text:
                # Keep the traceback, but as redacted text: a handler would format the original.
                record.msg = f"{record.msg}\n{self.values.redact(text).rstrip()}"
                record.exc_info, record.exc_text = None, None
        elif record.exc_text:
            record.exc_text = self.values.redact(record.exc_text)
        return True


def install(handlers: Iterable[logging.Handler] | None = None) -> RedactingFilter:
    """Add the filter to ``handlers`` (default: the root logger's) and return it."""
    redacting = RedactingFilter()
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(redacting)
    return redacting
