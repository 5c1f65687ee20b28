"""Command line: python3 -m hftp HOST[:PORT] ls | stat NAME | get NAME [-o OUT]
| cat NAME | help

Exit status: 0 success, 1 the server answered an error status (printed as
``hftp: CODE TEXT``), 2 cannot connect / usage error, 3 the server broke the
protocol or the connection.
"""

import argparse
import errno
import os
import socket
import sys

from .client import Client, DEFAULT_PORT
from .errors import HFTPError, ProtocolError

EXIT_STATUS = 1
EXIT_CONNECT = 2
EXIT_PROTOCOL = 3


def parse_server(text):
    """HOST, HOST:PORT, [V6], [V6]:PORT or a bare IPv6 address -> (host, port)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError("missing ']' in %r" % text)
        host, rest = text[1:end], text[end + 1:]
        if not rest:
            return host, DEFAULT_PORT
        if not rest.startswith(":"):
            raise ValueError("expected ':PORT' after ']' in %r" % text)
        port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        return text, DEFAULT_PORT      # a name, IPv4 or bare IPv6 address
    if not host:
        raise ValueError("empty host in %r" % text)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("bad port in %r" % text)
    return host, int(port)


def build_parser():
    p = argparse.ArgumentParser(
        prog="hftp", description="HFTP client (talks to hftpd).")
    p.add_argument("server", metavar="HOST[:PORT]",
                   help="server address; [::1]:19500 for IPv6 "
                        "(default port %d)" % DEFAULT_PORT)
    p.add_argument("--timeout", type=float, default=30,
                   help="socket timeout in seconds (default 30)")
    p.add_argument("--raw", action="store_true",
                   help="fetch slices with the raw framing (2026 servers)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    sub.add_parser("ls", help="list the served files")
    s = sub.add_parser("stat", help="print the size of a file")
    s.add_argument("name")
    g = sub.add_parser("get", help="download a file")
    g.add_argument("name")
    g.add_argument("-o", "--output", metavar="OUT",
                   help="where to write it (default: NAME; '-' for stdout)")
    g.add_argument("--chunk", type=int, default=4 * 1024 * 1024,
                   help="bytes per get_slice request (default 4 MiB)")
    c = sub.add_parser("cat", help="write a file's bytes to stdout")
    c.add_argument("name")
    sub.add_parser("help", help="print the server's command list")
    return p


def run(args, client):
    out = sys.stdout
    if args.command == "ls":
        for name in client.listing():
            out.write(name + "\n")
    elif args.command == "stat":
        out.write("%d\n" % client.metadata(args.name))
    elif args.command == "help":
        for name in client.help():
            out.write(name + "\n")
    elif args.command == "cat" or (args.command == "get" and
                                   args.output == "-"):
        out.flush()
        client.download(args.name, sys.stdout.buffer,
                        chunk=getattr(args, "chunk", 4 * 1024 * 1024),
                        raw=args.raw)
        sys.stdout.buffer.flush()
    elif args.command == "get":
        dest = args.output or os.path.basename(args.name)
        client.download(args.name, dest, chunk=args.chunk, raw=args.raw)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        host, port = parse_server(args.server)
    except ValueError as e:
        print("hftp: %s" % e, file=sys.stderr)
        return EXIT_CONNECT
    try:
        client = Client(host, port, timeout=args.timeout)
    except OSError as e:
        why = e.strerror or str(e)
        if isinstance(e, ConnectionRefusedError) or e.errno == errno.ECONNREFUSED:
            why = "connection refused (is hftpd running?)"
        elif isinstance(e, socket.timeout):
            why = "timed out"
        print("hftp: cannot connect to %s port %d: %s" % (host, port, why),
              file=sys.stderr)
        return EXIT_CONNECT
    try:
        with client:
            run(args, client)
    except HFTPError as e:
        sys.stdout.flush()
        print("hftp: %d %s" % (e.code, e.text), file=sys.stderr)
        return EXIT_STATUS
    except BrokenPipeError:
        # Reader went away (hftp ... cat | head): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (ProtocolError, OSError) as e:
        print("hftp: %s" % e, file=sys.stderr)
        return EXIT_PROTOCOL
    return 0


if __name__ == "__main__":
    sys.exit(main())
