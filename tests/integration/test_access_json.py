"""access_log_format = json: one JSON object a line, with the same fields
and values as the text line for the same requests (time, client, request,
status, bytes, usec)."""
import json
import re

from client_util import logged_server

# Requests of every kind: answered, refused, fatal; names cut; escapes.
REQUESTS = [
    b"get_metadata archivo.txt\r\n",
    b"get_metadata missing\r\n",
    b"get_slice ten.txt 2 5\r\n",
    b"get_slice ten.txt 0 10 raw\r\n",
    b"get_file_listing\r\n",
    b"help\r\n",
    b"he\"l\\p\x01\x7f\xff\r\n",
    b"get_metadata " + b"n" * 300 + b"\r\n",
    b"quit a b c d e f\r\n",
    b"quit\r\n",
]

_TEXT_RE = re.compile(r'^(\S+) (\S+) "(.*)" (\d+) (\d+) (\d+)$')


def _serve(hftpd, tmp_path, fmt):
    """Sends REQUESTS on one connection to a server logging in fmt; returns
    the log's lines and the client's own address text."""
    srv = logged_server(hftpd, tmp_path, None, access_log_format=fmt)
    c = srv.client()
    host, port = c.sock.getsockname()[:2]
    c.send_raw(b"".join(REQUESTS))
    c.read_all()
    c.close()
    problems = srv.stop()   # flushes the log
    assert not problems, problems
    return srv.access_log.read_bytes().decode("ascii").splitlines(), \
        "%s:%d" % (host, port)


def test_json_lines_carry_the_text_lines_values(hftpd, tmp_path):
    text, text_peer = _serve(hftpd, tmp_path, "text")
    js, json_peer = _serve(hftpd, tmp_path, "json")
    assert len(text) == len(REQUESTS), text
    assert len(js) == len(REQUESTS), js
    for t, j in zip(text, js):
        m = _TEXT_RE.match(t)
        assert m, t
        obj = json.loads(j)
        assert list(obj) == ["time", "client", "request", "status", "bytes",
                             "usec"], j
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", obj["time"])
        assert m.group(2) == text_peer
        assert obj["client"] == json_peer
        assert obj["request"] == m.group(3), (t, j)
        assert obj["status"] == int(m.group(4)), (t, j)
        assert obj["bytes"] == int(m.group(5)), (t, j)
        assert isinstance(obj["usec"], int) and obj["usec"] >= 0
    # the same requests, the escapes as the text line has them
    requests = [json.loads(j)["request"] for j in js]
    assert requests[6] == "he\\x22l\\x5cp\\x01\\x7f\\xff"
    assert requests[7].startswith("get_metadata nnn") and \
        requests[7].endswith("...")
    assert requests[8] == "quit a b c d ..."
    assert [json.loads(j)["status"] for j in js] == \
        [0, 202, 0, 0, 0, 0, 200, 202, 201, 0]
