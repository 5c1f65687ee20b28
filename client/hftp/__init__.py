"""hftp — a client for HFTP, the protocol hftpd speaks (standard library only).

    from hftp import Client
    with Client("127.0.0.1", 19500) as c:
        print(c.listing())
        data = c.slice("archivo.txt", 0, c.metadata("archivo.txt"))

The command line is hftp.cli (the `hftp` console script, or python3 -m hftp).
"""

__version__ = "1.1.0"

from .client import (  # noqa: E402
    DEFAULT_PORT, FRAMING_AUTO, FRAMING_BASE64, FRAMING_RAW, FRAMINGS, Client,
)
from .errors import (  # noqa: E402
    STATUS_TEXT, BadEOL, BadRequest, ConnectionClosedError, FileNotFound,
    HFTPError, InternalServerError, InvalidArguments, NoSuchCommand,
    OffsetExceedsFileSize, ProtocolError, error_for,
)

__all__ = [
    "Client", "DEFAULT_PORT", "HFTPError", "BadEOL", "BadRequest",
    "InternalServerError", "NoSuchCommand", "InvalidArguments", "FileNotFound",
    "OffsetExceedsFileSize", "ProtocolError", "ConnectionClosedError",
    "STATUS_TEXT", "error_for", "FRAMING_AUTO", "FRAMING_RAW",
    "FRAMING_BASE64", "FRAMINGS", "__version__",
]
