"""hftp mirror: rsync's quick check (missing or another size), parallel
across files, --delete, one summary line."""

import os

from client_util import access_lines, addr, hftp_run, logged_server


def test_mirror_new_changed_unchanged_deleted(hftpd, tmp_path):
    files = {"new.bin": os.urandom(300000), "changed.txt": b"version two\n",
             "same.txt": b"same size\n", "empty": b""}
    srv = logged_server(hftpd, tmp_path, files)
    local = tmp_path / "copy"
    local.mkdir()
    (local / "changed.txt").write_bytes(b"v1\n")
    (local / "same.txt").write_bytes(b"SAME SIZE\n")     # same size: kept
    (local / "empty").write_bytes(b"")
    (local / "gone.txt").write_bytes(b"no longer served\n")
    (local / "subdir").mkdir()                           # never deleted

    r = hftp_run(addr(srv), "mirror", local, "--delete", "-j", "3")
    assert r.returncode == 0, r.stderr
    summary = r.stdout.decode().strip().splitlines()
    assert len(summary) == 1, summary
    assert ("4 listed, 1 new, 1 changed, 2 unchanged, 1 deleted"
            in summary[0]), summary
    assert (local / "new.bin").read_bytes() == files["new.bin"]
    assert (local / "changed.txt").read_bytes() == b"version two\n"
    assert (local / "same.txt").read_bytes() == b"SAME SIZE\n"
    assert sorted(os.listdir(local)) == ["changed.txt", "empty", "new.bin",
                                         "same.txt", "subdir"]
    fetched = {q.split(" ")[1] for q, status, _ in access_lines(srv)
               if q.startswith("get_slice") and status == 0}
    assert fetched == {"new.bin", "changed.txt"}


def test_mirror_without_delete_keeps_local_files_and_is_idempotent(
        hftpd, tmp_path):
    srv = hftpd(files={"a": b"aaa", "b": b"bb"})
    local = tmp_path / "copy"
    local.mkdir()
    (local / "mine").write_bytes(b"x")
    r = hftp_run(addr(srv), "mirror", local)
    assert r.returncode == 0, r.stderr
    assert b"2 new" in r.stdout
    r = hftp_run("mirror", addr(srv), local, "-q")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    r = hftp_run(addr(srv), "mirror", local)
    assert b"0 new, 0 changed, 2 unchanged, 0 deleted" in r.stdout
    assert sorted(os.listdir(local)) == ["a", "b", "mine"]
