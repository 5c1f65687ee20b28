"""Admission in the master and, for PROXY listeners, in the worker:
allow / deny lines (first match wins), proxy_trusted, and
max_clients_per_address counted across workers.  A refused connection is
reset unanswered, and refusals are logged as one aggregated line per kind
per interval, never one per connection.  Loopback only: 127.0.0.0/8 gives
as many source addresses as a test needs (the client socket is bound to
one before connecting)."""

import os
import re
import signal
import socket
import time

from conftest import (HELP_RESPONSE, SCALE, free_port, read_until,
                      run_hftpd, socket_inodes_of, tcp_connections, wait_for)

ACL = ["allow = 127.0.0.1", "deny = 127.0.0.3/32", "allow = 127.0.0.0/8",
       "deny = all"]


def open_from(port, src, timeout=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout or 5 * SCALE)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def answered(s, first=b""):
    """Sends first + help on s: True when help is answered, False when the
    server closes or resets the connection without a byte."""
    try:
        s.sendall(first + b"help\r\n")
        got, _ = read_until(s, b"\r\n\r\n")
    except (ConnectionError, OSError):
        return False
    assert got == HELP_RESPONSE
    return True


def served(port, src, first=b""):
    try:
        s = open_from(port, src)
    except ConnectionError:
        return False        # the reset came before connect returned
    with s:
        return answered(s, first)


def proxy_v1(src, dst="127.0.0.1", sport=40000, dport=19500):
    return ("PROXY TCP4 %s %s %d %d\r\n" % (src, dst, sport, dport)).encode()


def refusal_lines(text, kind):
    """The aggregated lines of one kind, as (count this line, total)."""
    return [(int(m.group(1)), int(m.group(2))) for m in
            re.finditer(r"(\d+) %s \(top: [^)]*\); (\d+) since start" % re.escape(kind),
                        text)]


def test_allow_deny_first_match_wins(hftpd):
    srv = hftpd(config=ACL)
    assert served(srv.port, "127.0.0.1")
    assert served(srv.port, "127.0.0.2")
    assert served(srv.port, "127.0.0.254")
    for _ in range(20):
        assert not served(srv.port, "127.0.0.3")
    assert served(srv.port, "127.0.0.2")    # the refusals cost the others nothing
    assert srv.stop() == []
    text = srv.stderr_text()
    lines = refusal_lines(text, "refused by allow/deny")
    # one line at the first refusal, the rest at exit: never one per connection
    assert 1 <= len(lines) <= 2, text
    assert sum(n for n, _ in lines) == 20 and lines[-1][1] == 20, text
    assert "127.0.0.3 x" in text, text


def start_proxied(hftpd, extra):
    plain, proxied = free_port(), free_port()
    srv = hftpd(port=plain, workers=2, config=[
        "listen = 127.0.0.1:%d" % plain,
        "listen = 127.0.0.1:%d proxy_protocol" % proxied] + extra)
    srv.proxied = proxied
    assert wait_for(lambda: served(proxied, "127.0.0.1", proxy_v1("127.0.0.2")),
                    10 * SCALE)
    return srv


def test_proxy_header_address_checked(hftpd):
    srv = start_proxied(hftpd, ACL + ["proxy_trusted = 127.0.0.1",
                                      "proxy_trusted = 127.0.0.6/31"])
    # allow / deny judge the header's client, not the balancer
    assert not served(srv.proxied, "127.0.0.1", proxy_v1("10.9.9.9"))
    assert not served(srv.proxied, "127.0.0.1", proxy_v1("127.0.0.3"))
    assert served(srv.proxied, "127.0.0.1", proxy_v1("127.0.0.2"))
    assert served(srv.proxied, "127.0.0.7", proxy_v1("127.0.0.2"))
    # a peer outside proxy_trusted is refused whatever its header says
    assert not served(srv.proxied, "127.0.0.5", proxy_v1("127.0.0.2"))
    assert not served(srv.proxied, "127.0.0.8", proxy_v1("127.0.0.1"))
    # the plain listener still judges the connection's own address
    assert not served(srv.port, "127.0.0.3")
    assert served(srv.port, "127.0.0.5")
    assert srv.stop() == []
    text = srv.stderr_text()
    assert sum(n for n, _ in refusal_lines(text, "refused by allow/deny")) == 3, text
    assert sum(n for n, _ in refusal_lines(
        text, "refused: PROXY from outside proxy_trusted")) == 2, text


def test_max_clients_per_address(hftpd):
    srv = hftpd(workers=2, config=["max_clients_per_address = 8"])
    socks = []
    for _ in range(40):
        try:
            socks.append(open_from(srv.port, "127.0.0.2"))
        except ConnectionError:
            pass    # reset at accept before connect() returned (loopback)
    try:
        ok = [s for s in socks if answered(s)]
        assert len(ok) == 8
        # the others were reset: the server holds 8 from that address
        assert wait_for(lambda: len(tcp_connections(srv.port)) == 8, 5 * SCALE), \
            tcp_connections(srv.port)
        # another address is served at once
        t0 = time.monotonic()
        assert served(srv.port, "127.0.0.1")
        assert time.monotonic() - t0 < 1.0 * SCALE
        # closes reach the master: room again for 127.0.0.2
        for s in ok[:3]:
            s.close()
        assert wait_for(lambda: len(tcp_connections(srv.port)) == 5, 5 * SCALE)
        time.sleep(0.5 * SCALE)     # workers report closes within 10 ms
        more = []
        for _ in range(4):
            try:
                more.append(open_from(srv.port, "127.0.0.2"))
            except ConnectionError:
                pass
        socks += more
        assert sum(answered(s) for s in more) == 3   # 5 open + 3 = the cap
    finally:
        for s in socks:
            s.close()
    assert srv.stop() == []
    text = srv.stderr_text()
    lines = refusal_lines(text, "refused over max_clients_per_address")
    assert 1 <= len(lines) <= 2 and lines[-1][1] >= 33, text


def test_max_clients_per_address_in_a_burst(hftpd):
    """40 connections from one address wait in the backlog while the master
    is stopped; woken, it accepts them in batches and hands each worker
    several in one message: the batch's own connections count against the
    cap, so exactly 8 are served and the rest reset."""
    srv = hftpd(workers=2, config=["max_clients_per_address = 8"])
    socks = []
    srv.wait_workers(2)
    time.sleep(1.0 * SCALE)     # both READY, their capacity reported
    os.kill(srv.pid, signal.SIGSTOP)
    try:
        for _ in range(40):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.4", 0))
            s.settimeout(5 * SCALE)
            s.connect(("127.0.0.1", srv.port))     # completes in the backlog
            socks.append(s)
    finally:
        os.kill(srv.pid, signal.SIGCONT)
    try:
        ok = [s for s in socks if answered(s)]
        assert len(ok) == 8
        assert wait_for(lambda: len(tcp_connections(srv.port)) == 8, 5 * SCALE), \
            tcp_connections(srv.port)
        # both workers took some: the batch was spread, not given to one
        conns = {ino for _, ino in tcp_connections(srv.port)}
        held = {pid: len(socket_inodes_of(pid) & conns) for pid in srv.workers()}
        assert sorted(held.values()) == [4, 4], held
    finally:
        for s in socks:
            s.close()
    assert srv.stop() == []


def test_max_clients_counts_proxy_header_address(hftpd):
    srv = start_proxied(hftpd, ["max_clients_per_address = 8",
                                "proxy_trusted = 127.0.0.1"])
    socks = [open_from(srv.proxied, "127.0.0.1") for _ in range(20)]
    try:
        for s in socks:
            s.sendall(proxy_v1("10.1.1.1") + b"help\r\n")
        # over the cap, the master tells the worker to reset the connection
        assert wait_for(lambda: len(tcp_connections(srv.proxied)) == 8, 5 * SCALE), \
            tcp_connections(srv.proxied)
        # the balancer's own address is not what counts
        assert served(srv.proxied, "127.0.0.1", proxy_v1("10.1.1.2"))
        assert served(srv.port, "127.0.0.1")
    finally:
        for s in socks:
            s.close()
    assert srv.stop() == []
    assert sum(n for n, _ in refusal_lines(
        srv.stderr_text(), "refused over max_clients_per_address")) == 12


def test_reload_applies_to_new_connections(hftpd):
    srv = hftpd(config=["deny = 127.0.0.3"])
    kept = open_from(srv.port, "127.0.0.2")
    try:
        assert answered(kept)
        assert not served(srv.port, "127.0.0.3")
        text = srv.config_path.read_text().replace("deny = 127.0.0.3", "deny = 127.0.0.2")
        srv.config_path.write_text(text)
        os.kill(srv.pid, signal.SIGHUP)
        assert wait_for(lambda: "configuration reloaded" in srv.stderr_text(), 10 * SCALE)
        assert wait_for(lambda: not served(srv.port, "127.0.0.2"), 5 * SCALE)
        assert served(srv.port, "127.0.0.3")
        assert answered(kept)       # an open connection is not cut
    finally:
        kept.close()


def test_t_warns_about_a_proxy_listener_without_proxy_trusted(tmp_path):
    conf = tmp_path / "hftpd.conf"
    base = "directory = %s\nlisten = 127.0.0.1:%d proxy_protocol\n" % (tmp_path, free_port())
    conf.write_text(base)
    # -f: a daemon's fallback error log (under /var/log) is root's
    r = run_hftpd(["-t", "-f", "-c", str(conf)], tmp_path)
    assert r.returncode == 0, r.stderr_text
    assert re.search(r"warning: listen 127\.0\.0\.1:\d+ proxy_protocol: no proxy_trusted",
                     r.stderr_text), r.stderr_text
    conf.write_text(base + "proxy_trusted = 10.0.0.0/8\n")
    r = run_hftpd(["-t", "-f", "-c", str(conf)], tmp_path)
    assert r.returncode == 0 and "warning" not in r.stderr_text, r.stderr_text
    # -T prints the lists in file order, each entry with its line
    conf.write_text(base + "proxy_trusted = 10.0.0.0/8\n" + "\n".join(ACL) + "\n")
    r = run_hftpd(["-T", "-f", "-c", str(conf)], tmp_path)
    printed = re.findall(r"(?m)^(allow|deny)\s+= (\S+)\s+# .*:(\d+)$", r.stdout_text)
    assert printed == [("allow", "127.0.0.1", "4"), ("deny", "127.0.0.3", "5"),
                       ("allow", "127.0.0.0/8", "6"), ("deny", "all", "7")], r.stdout_text
    assert re.search(r"(?m)^max_clients_per_address = 512\s+# default$", r.stdout_text)
    # an entry with host bits set is an error naming the network meant
    conf.write_text(base + "allow = 10.1.2.3/8\n")
    r = run_hftpd(["-t", "-f", "-c", str(conf)], tmp_path)
    assert r.returncode == 1
    assert ("hftpd.conf:3: allow: '10.1.2.3/8' has bits set past its prefix: "
            "write the network, 10.0.0.0/8") in r.stderr_text, r.stderr_text


def test_worker_death_uncounts_its_connections(hftpd):
    srv = hftpd(workers=1, config=["max_clients_per_address = 4"])
    (worker,) = srv.wait_workers(1)
    socks = [open_from(srv.port, "127.0.0.2") for _ in range(4)]
    try:
        assert all(answered(s) for s in socks)
        assert not served(srv.port, "127.0.0.2")
        srv.kill(worker)            # its 4 connections die with it
        assert srv.wait_workers(1, exclude=(worker,))
        assert wait_for(lambda: served(srv.port, "127.0.0.2"), 10 * SCALE)
    finally:
        for s in socks:
            s.close()
