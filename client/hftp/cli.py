"""The hftp command: argument parsing, the commands, messages and exit codes.

    hftp [OPTIONS] HOST[:PORT] COMMAND [ARGS] [OPTIONS]
    hftp [OPTIONS] COMMAND HOST[:PORT] [ARGS] [OPTIONS]

Options are accepted anywhere.  Every error is one line on stderr, naming
the file and the server where there is one, and exits with a status that
tells its kind apart (see EXIT_HELP).
"""

import argparse
import os
import signal
import ssl
import sys
from types import FrameType
from typing import List, NoReturn, Optional, Sequence, Tuple

from . import __version__
from .client import (
    DEFAULT_PORT, DEFAULT_TLS_PORT, FRAMING_AUTO, FRAMING_RAW, FRAMINGS,
    Client, tls_context,
)
from .errors import ConnectionClosedError, HFTPError, ProtocolError, TLSError
from .mirror import Mirror
from .progress import Progress
from .transfer import (
    DEFAULT_CHUNK, DEFAULT_CONNECTIONS, DEFAULT_RETRIES, PART_SUFFIX,
    SEGMENT_MIN, AlreadyExists, Cancelled, ChangedSizeError, FileDownload,
    LocalIOError, NetworkError, Options, OutputClosed, Session, Target,
    TransferError,
    describe_network_error, resolve_target,
)

EXIT_OK = 0
EXIT_STATUS = 1          # the server answered an error status
EXIT_USAGE = 2           # bad command line (argparse's own code)
EXIT_PROTOCOL = 3        # the server broke the protocol
EXIT_LOCAL = 4           # a local file could not be read or written
EXIT_NETWORK = 5         # cannot connect, or the connection kept failing
EXIT_INTERRUPTED = 130   # Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143    # SIGTERM (128 + SIGTERM)

COMMANDS = ("ls", "stat", "get", "cat", "mirror", "help")

EXIT_HELP = """\
commands:
  ls                    list the served files, one per line
  stat NAME             print the size of NAME in bytes
  get NAME              download NAME (to ./NAME, or -o OUT)
  cat NAME              write NAME's bytes to stdout (get NAME -o -)
  mirror DIR            make DIR hold the server's files: fetch the ones
                        missing or of another size locally (-j in
                        parallel), --delete the ones no longer listed
  help                  print the server's command list

downloads:
  A download into a regular file goes to OUT%(part)s and is renamed over OUT
  only when complete.  Ctrl-C or a lost connection keeps OUT%(part)s and
  OUT%(state)s; -c continues from them.  A file is fetched over -j
  connections (default %(conns)d; one per %(seg)d MiB for smaller files),
  each writing its range at its offset.  Transient
  failures (connection refused, reset or closed, timeouts) are retried
  --retries times, waiting 0.25 s, 0.5 s, 1 s ... up to 8 s, and continue
  from the bytes already written.  An OUT that exists and is not a regular
  file (a device, a FIFO) is written in place, never replaced.  A file whose
  size changes during the download is an error; nothing is installed.

exit status:
  %(ok)-3d success
  %(status)-3d the server answered an error status (e.g. 202 FILE NOT FOUND),
      or the file changed size during the download; --no-clobber and OUT
      exists
  %(usage)-3d usage error (bad option, address or argument)
  %(protocol)-3d the server broke the protocol (bad status line, framing, size)
  %(local)-3d local I/O error (cannot write OUT, no such directory, a --cafile
      that cannot be read, ...)
  %(network)-3d network error: cannot connect, or the connection failed more
      than --retries times in a row; with --tls, the certificate was not
      verified or the TLS handshake failed (never retried)
  %(intr)-3d interrupted (Ctrl-C); %(term)d for SIGTERM

examples:
  hftp 127.0.0.1 ls
  hftp get '[::1]:19500' big.iso -o /tmp/
  hftp -c 127.0.0.1 get big.iso
  hftp mirror 127.0.0.1:19500 ./copy --delete
  hftp --tls --cafile ca.pem files.example.org get big.iso   (port 19501)
""" % dict(part=PART_SUFFIX, state=".hftp-state", seg=SEGMENT_MIN >> 20,
           conns=DEFAULT_CONNECTIONS, ok=EXIT_OK, status=EXIT_STATUS,
           usage=EXIT_USAGE, protocol=EXIT_PROTOCOL, local=EXIT_LOCAL,
           network=EXIT_NETWORK, intr=EXIT_INTERRUPTED, term=EXIT_TERMINATED)

# Options that take a value (so that the command can be found among the
# positional arguments before argparse runs).
_VALUE_OPTIONS = frozenset((
    "-o", "--output", "-j", "--jobs", "--retries", "--timeout", "--port",
    "--framing", "--chunk", "--limit-rate", "--cafile", "--tls-name"))

_SIZE_SUFFIXES = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


class Terminated(BaseException):
    """SIGTERM arrived (handled like Ctrl-C, with its own exit status)."""


def parse_server(text: str, default: int = DEFAULT_PORT) -> Tuple[str, int]:
    """HOST, HOST:PORT, [V6], [V6]:PORT or a bare IPv6 address -> (host,
    port); default when the text has no port."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError("missing ']' in %r" % text)
        host, rest = text[1:end], text[end + 1:]
        if not rest:
            return host, default
        if not rest.startswith(":"):
            raise ValueError("expected ':PORT' after ']' in %r" % text)
        port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        return text, default           # a name, IPv4 or bare IPv6 address
    if not host:
        raise ValueError("empty host in %r" % text)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("bad port in %r" % text)
    return host, int(port)


def _byte_count(text: str) -> int:
    """'512', '64k', '4M', '1G' -> bytes (powers of 1024)."""
    t = text.strip().lower().rstrip("ib").rstrip("b") if text else text
    unit = t[-1:] if t[-1:] in _SIZE_SUFFIXES else ""
    digits = t[:-1] if unit else t
    try:
        value = float(digits)
    except ValueError:
        raise argparse.ArgumentTypeError("not a size: %r" % text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive: %r" % text)
    return int(value * _SIZE_SUFFIXES[unit])


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number: %r" % text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more: %r" % text)
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number: %r" % text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more: %r" % text)
    return value


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError("bad port: %r" % text)
    return int(text)


def _add_options(p: argparse.ArgumentParser, top: bool) -> None:
    """The options, on the main parser (with defaults) and on every command
    (without, so that an option given before the command is kept)."""
    def d(value: object) -> object:
        return value if top else argparse.SUPPRESS
    g = p.add_argument_group("options (accepted before or after COMMAND)")
    g.add_argument("--port", type=_port, default=d(None),
                   help="server port (default: from HOST, else %d; %d with "
                   "--tls)" % (DEFAULT_PORT, DEFAULT_TLS_PORT))
    g.add_argument("--timeout", type=float, default=d(30.0), metavar="SEC",
                   help="socket timeout in seconds (default 30)")
    g.add_argument("--framing", choices=FRAMINGS, default=d(FRAMING_AUTO),
                   help="slice framing: auto (default: ask help once per "
                   "connection, raw when the server has it), raw, or base64 "
                   "(the server's own framing: base64, or fragments from "
                   "fragment-era servers)")
    g.add_argument("--raw", dest="framing", action="store_const",
                   const=FRAMING_RAW, default=d(FRAMING_AUTO),
                   help="same as --framing raw")
    g.add_argument("-o", "--output", metavar="OUT", default=d(None),
                   help="get: where to write (default: ./NAME); an existing "
                   "directory gets OUT/NAME; '-' is stdout")
    g.add_argument("-j", "--jobs", type=_positive_int, metavar="N",
                   default=d(None),
                   help="get: connections, each fetching a range (default "
                   "%d; one per %d MiB for smaller files); mirror: files "
                   "fetched at once (default %d)"
                   % (DEFAULT_CONNECTIONS, SEGMENT_MIN >> 20,
                      DEFAULT_CONNECTIONS))
    g.add_argument("-c", "--continue", dest="resume", action="store_true",
                   default=d(False),
                   help="get: continue a partial download (OUT%s)"
                   % PART_SUFFIX)
    g.add_argument("--no-clobber", action="store_true", default=d(False),
                   help="get: do not overwrite an existing OUT (exit %d)"
                   % EXIT_STATUS)
    g.add_argument("--delete", action="store_true", default=d(False),
                   help="mirror: remove local files the server no longer "
                   "lists")
    g.add_argument("--retries", type=_count, metavar="N",
                   default=d(DEFAULT_RETRIES),
                   help="retries of a failing connection, with capped "
                   "exponential back-off (default %d)" % DEFAULT_RETRIES)
    g.add_argument("--chunk", type=_byte_count, metavar="BYTES",
                   default=d(DEFAULT_CHUNK),
                   help="bytes per get_slice request (default %d MiB; "
                   "suffixes k, M, G)" % (DEFAULT_CHUNK >> 20))
    g.add_argument("--limit-rate", type=_byte_count, metavar="RATE",
                   default=d(None),
                   help="at most RATE bytes per second in all (suffixes "
                   "k, M, G)")
    g.add_argument("--tls", action="store_true", default=d(False),
                   help="speak TLS (to a TLS terminator such as HAProxy in "
                   "front of hftpd); the server's certificate and name are "
                   "verified")
    g.add_argument("--cafile", metavar="FILE", default=d(None),
                   help="with --tls (implied): trust only the CA "
                   "certificates in FILE (PEM), not the system's")
    g.add_argument("--tls-name", metavar="NAME", default=d(None),
                   help="with --tls (implied): the name the server's "
                   "certificate must hold (default: HOST)")
    g.add_argument("-q", "--quiet", action="store_true", default=d(False),
                   help="no progress line, no mirror summary")
    g.add_argument("-v", "--verbose", action="store_true", default=d(False),
                   help="log every request and retry on stderr")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hftp",
        usage="hftp [OPTIONS] HOST[:PORT] COMMAND [ARGS]\n"
              "       hftp [OPTIONS] COMMAND HOST[:PORT] [ARGS]",
        description="HFTP client: list, fetch and mirror the files of an "
                    "HFTP server (hftpd).  HOST is a name, an IPv4 address "
                    "or an IPv6 address in brackets ([::1]:19500); the "
                    "default port is %d (%d with --tls)."
                    % (DEFAULT_PORT, DEFAULT_TLS_PORT),
        epilog=EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-V", "--version", action="version",
                   version="hftp %s" % __version__)
    p.add_argument("server", metavar="HOST[:PORT]",
                   help="the server")
    _add_options(p, top=True)
    # Listed, with their arguments, in the epilog.
    sub = p.add_subparsers(dest="command", metavar="COMMAND",
                           help=argparse.SUPPRESS)
    sub.required = True

    def command(name: str, text: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=text, description=text)
        _add_options(c, top=False)
        return c
    command("ls", "list the served files")
    command("stat", "print the size of a file").add_argument("name")
    command("get", "download a file").add_argument("name")
    command("cat", "write a file's bytes to stdout").add_argument("name")
    command("mirror", "copy every new or changed file into DIR") \
        .add_argument("directory", metavar="DIR")
    command("help", "print the server's command list")
    return p


def command_first(argv: List[str]) -> List[str]:
    """`hftp get HOST NAME` -> `hftp HOST get NAME`: if the first positional
    argument is a command, it swaps places with the second (the host)."""
    positions: List[int] = []
    i = 0
    while i < len(argv) and len(positions) < 2:
        a = argv[i]
        if a == "--":
            positions += [j for j in range(i + 1, min(i + 3, len(argv)))]
            break
        if a.startswith("-") and a != "-":
            if a in _VALUE_OPTIONS:
                i += 1
        else:
            positions.append(i)
        i += 1
    if len(positions) >= 2 and argv[positions[0]] in COMMANDS:
        first, second = positions[:2]
        argv = list(argv)
        argv[first], argv[second] = argv[second], argv[first]
    return argv


# -- running ------------------------------------------------------------------

class Context:
    def __init__(self, args: argparse.Namespace, host: str, port: int,
                 tls: Optional[ssl.SSLContext]) -> None:
        self.args = args
        self.host = host
        self.port = port
        self.tls = tls                  # one context for every connection
        self.address = Client(host, port, connect=False).address
        self.what = ""                  # the file being worked on, for errors


def _tls(args: argparse.Namespace) -> ssl.SSLContext:
    """The TLS context of --tls / --cafile / --tls-name.  Raises
    LocalIOError when the CA file cannot be used."""
    try:
        return tls_context(args.cafile)
    except ssl.SSLError:
        raise LocalIOError("%s: no CA certificate in it (PEM expected)"
                           % args.cafile)
    except OSError as e:
        raise LocalIOError("%s: %s" % (args.cafile,
                                       (e.strerror or str(e)).lower()))


def _progress(args: argparse.Namespace, label: str) -> Progress:
    return Progress(enabled=not args.quiet and sys.stderr.isatty(),
                    label=label)


def _options(ctx: Context) -> Options:
    a = ctx.args
    return Options(host=ctx.host, port=ctx.port, timeout=a.timeout,
                   framing=a.framing, connections=a.jobs, retries=a.retries,
                   chunk=a.chunk, limit_rate=a.limit_rate, resume=a.resume,
                   no_clobber=a.no_clobber, verbose=a.verbose,
                   tls=ctx.tls, tls_name=a.tls_name)


def _simple(ctx: Context) -> int:
    """ls, stat, help: one connection, one request."""
    a = ctx.args
    log = (lambda text: print("hftp: %s" % text, file=sys.stderr)) \
        if a.verbose else None
    with Client(ctx.host, ctx.port, timeout=a.timeout, log=log,
                tls=ctx.tls or False, tls_name=a.tls_name) as c:
        out = sys.stdout
        if a.command == "ls":
            for name in c.listing():
                out.write(name + "\n")
        elif a.command == "stat":
            ctx.what = a.name
            out.write("%d\n" % c.metadata(a.name))
        else:
            for name in c.help():
                out.write(name + "\n")
    return EXIT_OK


def _get(ctx: Context) -> int:
    a = ctx.args
    ctx.what = a.name
    output = "-" if a.command == "cat" else a.output
    target = resolve_target(a.name, output)
    progress = _progress(a, a.name if target.kind != "stdout" else "")
    session = Session(_options(ctx), progress)
    if target.kind == "stdout":
        sys.stdout.flush()
    dl = FileDownload(session, a.name, target)
    try:
        dl.run(threaded=True)
    finally:
        progress.finish()
    return EXIT_OK


def _mirror(ctx: Context) -> int:
    a = ctx.args
    progress = _progress(a, "mirror")
    session = Session(_options(ctx), progress)
    m = Mirror(session, a.directory, a.delete, a.jobs)
    result = m.run()
    code = EXIT_OK
    for name, err in result.errors:
        ctx.what = name
        code = max(code, report(ctx, err))
    if not a.quiet:
        print(result.summary(ctx.address, a.directory))
    return code


def report(ctx: Context, err: BaseException) -> int:
    """Prints one line for an error; returns its exit status."""
    what = "%s: " % ctx.what if ctx.what else ""
    if isinstance(err, HFTPError):
        code, text = EXIT_STATUS, "%s%s on %s" % (what, err, ctx.address)
    elif isinstance(err, AlreadyExists):
        code, text = EXIT_STATUS, str(err)
    elif isinstance(err, ChangedSizeError):
        code, text = EXIT_STATUS, "%s (on %s)" % (err, ctx.address)
    elif isinstance(err, LocalIOError):
        code, text = EXIT_LOCAL, str(err)
    elif isinstance(err, TLSError):
        code, text = EXIT_NETWORK, "%s%s: %s" % (what, ctx.address, err)
    elif isinstance(err, NetworkError):
        code, text = EXIT_NETWORK, "%s%s%s" % (what, err, _kept_part(ctx))
    elif isinstance(err, ConnectionClosedError) or (
            isinstance(err, OSError) and not isinstance(err, ProtocolError)):
        code, text = EXIT_NETWORK, "%s%s: %s" % (
            what, ctx.address, describe_network_error(err))
        if isinstance(err, ConnectionRefusedError):
            text = "cannot connect to %s: connection refused (is hftpd " \
                   "running?)" % ctx.address
    elif isinstance(err, ProtocolError):
        code, text = EXIT_PROTOCOL, "%s%s broke the protocol: %s" % (
            what, ctx.address, err)
    elif isinstance(err, TransferError):
        code, text = EXIT_LOCAL, str(err)
    else:
        raise err
    print("hftp: %s" % text, file=sys.stderr)
    return code


def _kept_part(ctx: Context) -> str:
    """'; OUT.hftp-part kept, ...' when a get left a partial download."""
    if ctx.args.command != "get" or not ctx.what:
        return ""
    try:
        t: Target = resolve_target(ctx.args.name, ctx.args.output)
    except TransferError:
        return ""
    if t.kind == "file" and os.path.exists(t.part):
        return "; %s kept, continue with -c" % t.part
    return ""


def _on_sigterm(signum: int, frame: Optional[FrameType]) -> NoReturn:
    raise Terminated()


def main(argv: Optional[Sequence[str]] = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(command_first(args_list))
    wants_tls = bool(args.tls or args.cafile or args.tls_name)
    try:
        host, port = parse_server(
            args.server, DEFAULT_TLS_PORT if wants_tls else DEFAULT_PORT)
    except ValueError as e:
        print("hftp: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    if args.port is not None:
        port = args.port
    try:
        tls = _tls(args) if wants_tls else None
    except LocalIOError as e:
        print("hftp: --cafile %s" % e, file=sys.stderr)
        return EXIT_LOCAL
    ctx = Context(args, host, port, tls)
    signal.signal(signal.SIGTERM, _on_sigterm)
    interrupted = EXIT_INTERRUPTED
    try:
        try:
            if args.command in ("get", "cat"):
                return _get(ctx)
            if args.command == "mirror":
                return _mirror(ctx)
            return _simple(ctx)
        except (KeyboardInterrupt, Cancelled):
            pass
        except Terminated:
            interrupted = EXIT_TERMINATED
    except (BrokenPipeError, OutputClosed):
        # The reader went away (hftp ... cat | head): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except (HFTPError, ProtocolError, OSError, TransferError, TLSError) as e:
        sys.stdout.flush()
        return report(ctx, e)
    print("hftp: interrupted%s" % _kept_part(ctx), file=sys.stderr)
    return interrupted
