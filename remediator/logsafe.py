"""Log lines that a label cannot forge: one line each, printable, bounded.

Alert labels (VM and host names, reasons quoting them) end up in log messages.  A label
with an embedded newline could forge a log line, a NUL byte confuses log shippers, and a
megabyte label makes a megabyte line.  So every record of the ``remediator`` logger has
its message rendered once, control characters written as escapes (``\\n``, ``\\x00``),
and the result cut to :data:`MAX_CHARS`.  Tracebacks (``exc_info``) are left alone: they
are the remediator's own text.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

MAX_CHARS = 2048

# C0 controls, DEL and C1 controls, plus the Unicode line and paragraph separators.
_CONTROLS = [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]
_ESCAPES = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _CONTROLS}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def escape(text: str, limit: int = MAX_CHARS) -> str:
    """``text`` on one printable line of at most about ``limit`` characters."""
    cut = len(text) > limit
    out = text[:limit].translate(_ESCAPES)
    if cut:
        out = f"{out[:limit]}... ({len(text) - limit} more characters)"
    elif len(out) > limit:
        out = out[:limit] + "..."
    return out


class SafeMessages(logging.Filter):
    """Renders and escapes each record's message in place (records are shared)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "vha_escaped", False):
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a bad format string must not kill logging
                message = f"{record.msg!r} {record.args!r}"
            record.msg, record.args = escape(message), None
            record.vha_escaped = True
        return True


class QuietBadRequests(logging.Filter):
    """aiohttp logs every request it cannot parse (a 400 it answers itself) with a full
    traceback: anyone who can connect could fill the log with them.  Such a record keeps
    one escaped line naming the client's mistake; other errors keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = escape(f"{record.getMessage()}: bad request: {exc.message}", 300)
            record.args, record.exc_info, record.exc_text = None, None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def install(logger: logging.Logger) -> None:
    """Add the filters once (create_app may run many times in one process)."""
    if not any(isinstance(f, SafeMessages) for f in logger.filters):
        logger.addFilter(SafeMessages())
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, QuietBadRequests) for f in server.filters):
        server.addFilter(QuietBadRequests())
