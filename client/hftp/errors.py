"""Exceptions raised by the HFTP client."""

from typing import Dict, Type


class HFTPError(Exception):
    """The server answered a request with a non-zero status.

    ``code`` is the numeric status, ``text`` the text the server sent after
    it.  Codes 100-199 are fatal: the server closes the connection after
    them, and the client marks itself closed.
    """

    def __init__(self, code: int, text: str) -> None:
        super().__init__(code, text)
        self.code = code
        self.text = text

    @property
    def fatal(self) -> bool:
        return 100 <= self.code < 200

    def __str__(self) -> str:
        return "%d %s" % (self.code, self.text)


class BadEOL(HFTPError):
    """100 BAD EOL"""


class BadRequest(HFTPError):
    """101 BAD REQUEST"""


class InternalServerError(HFTPError):
    """199 INTERNAL SERVER ERROR"""


class NoSuchCommand(HFTPError):
    """200 NO SUCH COMMAND"""


class InvalidArguments(HFTPError):
    """201 INVALID ARGUMENTS FOR COMMAND"""


class FileNotFound(HFTPError):
    """202 FILE NOT FOUND"""


class OffsetExceedsFileSize(HFTPError):
    """203 OFFSET EXCEEDS FILE SIZE"""


ERRORS_BY_CODE: Dict[int, Type[HFTPError]] = {
    100: BadEOL,
    101: BadRequest,
    199: InternalServerError,
    200: NoSuchCommand,
    201: InvalidArguments,
    202: FileNotFound,
    203: OffsetExceedsFileSize,
}

# The fixed status texts of HFTP (docs/PROTOCOL.md).
STATUS_TEXT: Dict[int, str] = {
    0: "OK",
    100: "BAD EOL",
    101: "BAD REQUEST",
    199: "INTERNAL SERVER ERROR",
    200: "NO SUCH COMMAND",
    201: "INVALID ARGUMENTS FOR COMMAND",
    202: "FILE NOT FOUND",
    203: "OFFSET EXCEEDS FILE SIZE",
}


def error_for(code: int, text: str) -> HFTPError:
    """The HFTPError subclass instance for a status code."""
    return ERRORS_BY_CODE.get(code, HFTPError)(code, text)


class ProtocolError(Exception):
    """The server's bytes do not follow HFTP (bad status line, bad framing,
    a short body).  The connection can no longer be trusted and the client
    closes it."""


class ConnectionClosedError(ProtocolError, ConnectionError):
    """The server closed the connection before a response was complete."""


class TLSError(Exception):
    """A TLS connection could not be set up: the server's certificate was
    not verified (unknown CA, wrong host name, expired), the handshake
    failed, or the port does not speak TLS.  Not an OSError and not a
    ProtocolError: retrying cannot help, so it is never retried."""
