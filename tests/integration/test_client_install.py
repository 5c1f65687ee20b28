"""The client as a package: pip install --no-build-isolation into a venv
(no registry needed), the console script, --help, and mypy --strict."""

import shutil
import subprocess
import sys

import pytest

from client_util import addr, hftp_run
from conftest import CLIENT_DIR, REPO


def _venv_tools():
    try:
        import ensurepip  # noqa: F401
        import setuptools  # noqa: F401
        import wheel  # noqa: F401
    except ImportError as e:
        pytest.skip("%s (tests/install-deps.sh installs python3-venv, "
                    "python3-setuptools and python3-wheel)" % e)


@pytest.mark.slow        # pip in a fresh venv; the server is not what is tested
def test_pip_install_into_a_venv_and_run_the_console_script(server, tmp_path):
    _venv_tools()
    src = tmp_path / "src"
    shutil.copytree(CLIENT_DIR, src, ignore=shutil.ignore_patterns(
        "__pycache__", "build", "*.egg-info"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages",
                    str(venv)], check=True, timeout=120)
    r = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install",
                        "-q", "--no-build-isolation", "--no-index", str(src)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=300)
    assert r.returncode == 0, r.stdout.decode(errors="replace")
    hftp = str(venv / "bin" / "hftp")
    r = subprocess.run([hftp, addr(server), "ls"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60, cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, b"archivo.txt\nempty\nten.txt\n"), \
        r.stderr
    r = subprocess.run([hftp, "--version"], stdout=subprocess.PIPE,
                       timeout=60, cwd=tmp_path)
    assert r.stdout.startswith(b"hftp ")
    # the installed package is the one imported, and it is typed
    r = subprocess.run([str(venv / "bin" / "python"), "-c",
                        "import hftp, os; print(hftp.__version__); "
                        "print(os.path.exists(os.path.join(os.path.dirname("
                        "hftp.__file__), 'py.typed')))"],
                       stdout=subprocess.PIPE, timeout=60, cwd=tmp_path)
    assert r.stdout.split()[1] == b"True"


def test_help_lists_commands_options_and_exit_codes():
    r = hftp_run("--help")
    assert r.returncode == 0
    text = r.stdout.decode()
    for word in ("ls", "stat", "get", "cat", "mirror", "--framing", "-j",
                 "--continue", "--no-clobber", "--delete", "--retries",
                 "--timeout", "--port", "--limit-rate", "-q", "-v",
                 "exit status", "130"):
        assert word in text, word
    for code in range(1, 6):
        assert "\n  %d " % code in text, code


def test_usage_error_exits_2():
    assert hftp_run("127.0.0.1", "frobnicate").returncode == 2
    assert hftp_run("127.0.0.1", "get", "x", "-j", "0").returncode == 2


def test_mypy_strict():
    r = subprocess.run([str(REPO / "client" / "check-types")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=300)
    if r.returncode == 77:
        pytest.skip(r.stdout.decode().strip())
    assert r.returncode == 0, r.stdout.decode()
