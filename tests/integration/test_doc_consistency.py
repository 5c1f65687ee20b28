"""The config keys and their defaults agree in the four places that state
them: `hftpd -T` (with an empty config file: the built-in defaults), the
commented keys of conf/hftpd.conf, hftpd.conf(5) and the README's
configuration table.  A key missing from one place, or a default that
differs, fails naming the key and the two places.  Also: every man page's
footer names hftpd and its version, and hftp(1) states -j's defaults as
`hftp --help` does.
"""

import os
import re
import subprocess
import sys

import pytest

from conftest import CLIENT_DIR, REPO, run_hftpd

T = "hftpd -T"
CONF = "conf/hftpd.conf"
MAN = "docs/man/hftpd.conf.5"
README = "README.md"

SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def normal(value, like):
    """value as the parser reads a value of like's kind (like: -T's text
    of it): durations in seconds, sizes and numbers in bytes, other words
    as they are."""
    v = value.strip().strip("`").rstrip(".,;:")
    if re.fullmatch(r"\d+s", like):
        m = re.fullmatch(r"(\d+)([smhd]?)", v)
        return int(m.group(1)) * DURATION_UNITS[m.group(2) or "s"] if m else v
    if re.fullmatch(r"\d+", like):
        m = re.fullmatch(r"(\d+)([kKmMgG]?)", v)
        return int(m.group(1)) * SIZE_UNITS.get(m.group(2).lower(), 1) \
            if m else v
    return v


# -- the four places -------------------------------------------------------------

def t_defaults(tmp_path, folder):
    """{key: (value, origin)} from -T run with an empty config file, in a
    folder holding the default directory (testdata) that a root master's
    workers (nobody) can reach; -f (no pid file: the daemon's default is
    compared against -V's)."""
    (folder / "testdata").mkdir()
    r = run_hftpd(["-T", "-f", "-c", "/dev/null"], tmp_path, cwd=folder,
                  user=None)
    assert r.returncode == 0, r.stderr_text
    keys = {}
    for line in r.stdout_text.splitlines():
        # an empty list (allow, deny, proxy_trusted) is a comment line
        m = re.match(r"^#?(\w+)\s+= (.*?)\s+# (.*)$", line)
        if m:
            keys.setdefault(m.group(1), (m.group(2), m.group(3)))
    v = run_hftpd(["-V"], tmp_path).stdout_text
    pid_file = re.search(r"^pid file: (.*)$", v, re.M).group(1)
    keys["pid_file"] = (pid_file, "hftpd -V")
    return keys


def conf_keys():
    """{key: default} for the commented `#key = value` lines (the first of
    each key), and the set of keys set uncommented."""
    commented, set_keys = {}, set()
    for line in (REPO / CONF).read_text().splitlines():
        m = re.fullmatch(r"#(\w+) = (\S+).*", line)
        if m:
            commented.setdefault(m.group(1), m.group(2))
            continue
        m = re.fullmatch(r"(\w+) = (\S+).*", line)
        if m:
            set_keys.add(m.group(1))
    return commented, set_keys


def man_keys():
    """{key: default} from the KEYS list of hftpd.conf(5): the first word
    after "Default:" in the key's entry."""
    text = (REPO / MAN).read_text()
    keys_section = text.split(".Sh KEYS", 1)[1].split("\n.Sh ", 1)[0]
    out, sharing = {}, []
    for entry in re.split(r"^\.It Ic ", keys_section, flags=re.M)[1:]:
        name = entry.split()[0]
        # the entry as words: macros dropped, one line
        words = " ".join(re.sub(r"^\.\w+\s*", "", ln)
                         for ln in entry.splitlines()[1:])
        if not words.strip():
            sharing.append(name)    # described with the next item
            continue
        m = re.search(r"Default:\s*(\S+)", words)
        for key in sharing + [name]:
            out[key] = m.group(1) if m else None
        sharing = []
    return out


def readme_keys():
    """{key: default} from the README's configuration table: the first
    `code` of the default column."""
    text = (REPO / README).read_text()
    section = text.split("## Configuration file", 1)[1].split("\n## ", 1)[0]
    out = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        m = re.search(r"`([^`]+)`", cells[2])
        default = m.group(1) if m else cells[2].split()[0]
        for key in re.findall(r"`(\w+)`", cells[0]):
            out[key] = default
    return out


# -- the comparisons ------------------------------------------------------------

def expected_from_t(key, t):
    """What the docs should say for key, given -T's line for it; None when
    -T's value cannot be compared as it is (explained by the caller)."""
    value, origin = t
    if key == "workers":
        return "auto"           # -T prints the resolved number (checked below)
    if key == "directory":
        return os.path.basename(value)
    if key in ("user", "group") and origin.startswith("default: not root"):
        return None             # a user's run: the workers keep that user
    if key == "listen":
        return value.split()[0]
    if value == "(none)":
        return "none"           # a list with no entry
    return value


def test_config_keys_and_defaults_agree(tmp_path, privileged_dir):
    t = t_defaults(tmp_path, privileged_dir)
    conf, conf_set = conf_keys()
    man = man_keys()
    readme = readme_keys()
    places = {T: set(t), CONF: set(conf) | conf_set, MAN: set(man),
              README: set(readme)}
    problems = []
    every = set().union(*places.values())
    for key in sorted(every):
        have = [p for p in places if key in places[p]]
        for p in places:
            if key not in places[p]:
                problems.append("key %s: in %s but missing from %s"
                                % (key, ", ".join(have), p))
    docs = {CONF: conf, MAN: man, README: readme}
    for key in sorted(set(t)):
        want = expected_from_t(key, t[key])
        if want is None:
            continue
        for place, table in docs.items():
            if key not in table:
                continue        # reported above (or set uncommented in conf)
            if want == "none" and place == CONF:
                continue        # a list's commented lines are examples
            got = table[key]
            if got is None:
                problems.append("key %s: %s states no default; %s says %r"
                                % (key, place, T, t[key][0]))
            elif normal(got, want) != normal(want, want):
                problems.append("key %s: default %r in %s but %r in %s (%s)"
                                % (key, got.rstrip(".,;"), place, want, T,
                                   t[key][1]))
    if "workers" in t:
        online = os.sysconf("SC_NPROCESSORS_ONLN")
        if int(t["workers"][0]) != max(1, min(online, 1024)):
            problems.append("key workers: %s says %s, not auto (%d online "
                            "CPUs)" % (T, t["workers"][0], online))
    assert not problems, "\n".join(problems)


def test_T_user_default():
    """The documented defaults of user and group are nobody and nogroup:
    what a root master's workers become (-T as root says so)."""
    conf, _ = conf_keys()
    assert (conf.get("user"), conf.get("group")) == ("nobody", "nogroup")
    assert (man_keys()["user"], man_keys()["group"]) == ("nobody", "nogroup")
    assert (readme_keys()["user"], readme_keys()["group"]) == \
        ("nobody", "nogroup")


# -- man pages -------------------------------------------------------------------

def test_man_footers_name_hftpd_and_its_version(tmp_path):
    """A bare .Os printed the build machine's system ("BSD")."""
    version = run_hftpd(["-V"], tmp_path).stdout_text.split()[1]
    for page in sorted((REPO / "docs" / "man").glob("*.[158]")):
        os_lines = re.findall(r"^\.Os(.*)$", page.read_text(), re.M)
        assert os_lines == [" hftpd %s" % version], (page.name, os_lines)


def test_hftp_man_states_j_as_help_does():
    env = dict(os.environ, PYTHONPATH=str(CLIENT_DIR))
    r = subprocess.run([sys.executable, "-m", "hftp", "--help"],
                       capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    help_j = " ".join(r.stdout.split("--jobs N", 1)[1].split("-c,", 1)[0]
                      .split())
    page = (REPO / "docs" / "man" / "hftp.1").read_text()
    man_j = " ".join(page.split("Fl \\-jobs Ar n", 1)[1].split("\n.It ", 1)[0]
                     .split())
    defaults = re.findall(r"default (\d+)", help_j)
    assert defaults and re.findall(r"default (\d+)", man_j) == defaults, \
        (help_j, man_j)
    per = re.search(r"one per (\d+ MiB)", help_j)
    if per:
        assert "one per %s" % per.group(1) in man_j, (help_j, man_j)
