"""The served directory: listing rules, and a directory deleted, recreated or
missing while the server runs."""

import os
import random
import shutil

import pytest

import hftp

from conftest import ST, assert_usable, converse


def test_listing_1000_files_sorted_by_byte_value(hftpd):
    rng = random.Random(3)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
    names = set()
    while len(names) < 1000:
        n = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 40)))
        if n not in (".", ".."):
            names.add(n)
    files = {n: n.encode() for n in names}
    srv = hftpd(files=files)
    want = sorted(n.encode() for n in names)      # bytes sort = byte value
    response = b"0 OK\r\n" + b"".join(n + b"\r\n" for n in want) + b"\r\n"
    converse(srv, b"get_file_listing\r\n", response)
    # Two clients list the same directory identically.
    with srv.client() as a, srv.client() as b:
        la, lb = a.listing(), b.listing()
        assert la == lb == [n.decode() for n in want]


def test_listing_leaves_out_what_clients_cannot_fetch(hftpd):
    srv = hftpd(files={
        "Zeta": b"1", "alpha": b"2", "-dash": b"3", ".hidden": b"4",
        "..dots": b"5", "9nine": b"6", "_u": b"7", "a.b-c_d": b"8",
        "with space": b"x", "\u00f1and\u00fa": b"x", "a@b": b"x", "tab\tname": b"x",
        "cr\rname": b"x", "q?": b"x", "plus+": b"x", "subdir": None, "sub.d": None,
    })
    d = srv.directory
    (d / "subdir" / "nested").write_bytes(b"nested")
    os.symlink("alpha", d / "link")
    os.mkfifo(d / "fifo")
    want = sorted([b"Zeta", b"alpha", b"-dash", b".hidden", b"..dots", b"9nine",
                   b"_u", b"a.b-c_d"])
    assert want[0] == b"-dash" and want[-1] == b"alpha"
    c = converse(srv, b"get_file_listing\r\n",
                 b"0 OK\r\n" + b"".join(n + b"\r\n" for n in want) + b"\r\n")
    assert_usable(c)
    with srv.client() as cl:
        assert cl.metadata(".hidden") == 1
        assert cl.slice("..dots", 0, 1) == b"5"


def test_empty_directory_listing(hftpd):
    srv = hftpd(files={})
    converse(srv, b"get_file_listing\r\n", b"0 OK\r\n\r\n")


def test_directory_deleted_and_recreated(hftpd):
    srv = hftpd(files={"old.txt": b"old contents"})
    d = srv.directory
    c = srv.client()
    assert c.listing() == ["old.txt"]
    assert c.metadata("old.txt") == 12
    for round_ in range(5):
        # what the course suites do: rm -rf testdata; mkdir testdata
        shutil.rmtree(d)
        os.mkdir(d)
        name = "new%d.txt" % round_
        (d / name).write_bytes(b"x" * (round_ + 1))
        # Same connection, next request, sees the new directory.
        assert c.listing() == [name]
        assert c.metadata(name) == round_ + 1
        assert c.slice(name, 0, round_ + 1, raw=True) == b"x" * (round_ + 1)
        with pytest.raises(hftp.FileNotFound):
            c.metadata("old.txt")
        # And a new connection too.
        with srv.client() as c2:
            assert c2.listing() == [name]


def test_directory_replaced_by_rename(hftpd, tmp_path):
    srv = hftpd(files={"a": b"aaa"})
    other = tmp_path / "other"
    other.mkdir()
    (other / "b").write_bytes(b"bbbb")
    c = srv.client()
    assert c.listing() == ["a"]
    os.rename(srv.directory, tmp_path / "moved")
    os.rename(other, srv.directory)
    assert c.listing() == ["b"]
    assert c.slice("b", 0, 4) == b"bbbb"


def test_directory_missing_then_back(hftpd):
    srv = hftpd(files={"f": b"data"})
    d = srv.directory
    c = srv.client()
    assert c.metadata("f") == 4
    shutil.rmtree(d)
    c.send_raw(b"get_file_listing\r\nget_metadata f\r\nget_slice f 0 1\r\n"
               b"get_slice f 0 0 raw\r\n")
    want = b"0 OK\r\n\r\n" + ST[202] * 3
    assert c.read_at_most(len(want)) == want
    assert_usable(c)
    with srv.client() as c2:
        assert c2.listing() == []
    assert srv.proc.poll() is None, "server exited when its directory vanished"
    os.mkdir(d)
    (d / "g").write_bytes(b"back")
    assert c.listing() == ["g"]
    assert c.slice("g", 0, 4) == b"back"


def test_file_changes_seen_per_request(hftpd):
    srv = hftpd(files={"f": b"12345"})
    c = srv.client()
    assert c.metadata("f") == 5
    (srv.directory / "f").write_bytes(b"1234567890")
    assert c.metadata("f") == 10
    assert c.slice("f", 5, 5) == b"67890"
    (srv.directory / "f").unlink()
    converse(srv, b"get_metadata f\r\n", ST[202])
    (srv.directory / "g").write_bytes(b"")
    assert c.listing() == ["g"]




def test_longest_valid_name_255(hftpd):
    name = ("n" * 250) + ".txt1"
    assert len(name) == 255
    srv = hftpd(files={name: b"max", "a": b""})
    with srv.client() as c:
        assert c.listing() == sorted([name, "a"])
        assert c.metadata(name) == 3
        assert c.slice(name, 1, 2) == b"ax"
        assert c.slice(name, 0, 3, raw=True) == b"max"
    converse(srv, b"get_metadata " + name.encode() + b"x\r\n", ST[202])


def test_file_larger_than_4GiB(hftpd):
    srv = hftpd(files={})
    big = srv.directory / "sparse"
    off = (5 << 30) + 3
    with open(big, "wb") as f:
        f.seek(off)
        f.write(b"HELLO")
    size = off + 5
    with srv.client() as c:
        assert c.metadata("sparse") == size
        assert c.slice("sparse", off, 5) == b"HELLO"
        assert c.slice("sparse", off - 2, 7, raw=True) == b"\0\0HELLO"
    converse(srv, b"get_slice sparse %d 5\r\n" % off, b"0 OK\r\nSEVMTE8=\r\n")
    converse(srv, b"get_slice sparse %d 1\r\n" % size, ST[203])
    converse(srv, b"get_slice sparse 4294967296 %d\r\n" % (size - 4294967295),
             ST[203])
