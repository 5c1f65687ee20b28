"""hftp — a client for HFTP, the protocol hftpd speaks (standard library only).

    from hftp import Client
    with Client("127.0.0.1", 19500) as c:
        print(c.listing())
        data = c.slice("archivo.txt", 0, c.metadata("archivo.txt"))
"""

from .client import Client, DEFAULT_PORT
from .errors import (
    HFTPError, BadEOL, BadRequest, InternalServerError, NoSuchCommand,
    InvalidArguments, FileNotFound, OffsetExceedsFileSize, ProtocolError,
    ConnectionClosedError, STATUS_TEXT, error_for,
)

__all__ = [
    "Client", "DEFAULT_PORT", "HFTPError", "BadEOL", "BadRequest",
    "InternalServerError", "NoSuchCommand", "InvalidArguments", "FileNotFound",
    "OffsetExceedsFileSize", "ProtocolError", "ConnectionClosedError",
    "STATUS_TEXT", "error_for",
]
