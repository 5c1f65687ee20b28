"""hftp — a client for HFTP, the protocol hftpd speaks (standard library only).

    from hftp import Client
    with Client("127.0.0.1", 19500) as c:
        print(c.listing())
        data = c.slice("archivo.txt", 0, c.metadata("archivo.txt"))

Client(..., tls=True) speaks TLS (certificate and host name verified);
tls=tls_context(cafile) trusts only the CAs in cafile.

The command line is hftp.cli (the `hftp` console script, or python3 -m hftp).
"""

__version__ = "1.2.0"

from .client import (  # noqa: E402
    DEFAULT_PORT, DEFAULT_TLS_PORT, FRAMING_AUTO, FRAMING_BASE64, FRAMING_RAW,
    FRAMINGS, Client, tls_context,
)
from .errors import (  # noqa: E402
    STATUS_TEXT, BadEOL, BadRequest, ConnectionClosedError, FileNotFound,
    HFTPError, InternalServerError, InvalidArguments, NoSuchCommand,
    OffsetExceedsFileSize, ProtocolError, TLSError, error_for,
)

__all__ = [
    "Client", "DEFAULT_PORT", "DEFAULT_TLS_PORT", "HFTPError", "BadEOL", "BadRequest",
    "InternalServerError", "NoSuchCommand", "InvalidArguments", "FileNotFound",
    "OffsetExceedsFileSize", "ProtocolError", "ConnectionClosedError",
    "STATUS_TEXT", "error_for", "FRAMING_AUTO", "FRAMING_RAW",
    "FRAMING_BASE64", "FRAMINGS", "TLSError", "tls_context", "__version__",
]
