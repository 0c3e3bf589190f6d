"""man/happac.8 renders without warnings and matches the program: every
option of `happac --help` and `happac check --help`, every reply of the
README's table, every exit status and signal."""

import os
import re
import subprocess

import pytest

from harness import require_tool
from ops_procs import REPO, clean_env

MAN = os.path.join(REPO, "man", "happac.8")


@pytest.fixture(scope="module")
def groff():
    return require_tool("groff", "groff-base")


@pytest.fixture(scope="module")
def rendered(groff):
    r = subprocess.run([groff, "-man", "-Tascii", "-P-cbou", "-rLL=200n", MAN],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return " ".join(r.stdout.split())


def test_groff_has_no_warnings(groff):
    r = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", MAN], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_man_renders():
    man = require_tool("man", "man-db")
    r = subprocess.run([man, "--warnings", "-l", MAN], capture_output=True, text=True,
                       timeout=30, env=dict(clean_env(), MANWIDTH="80", MANPAGER="cat",
                                            PAGER="cat", LC_ALL="C.UTF-8"))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "happac check" in r.stdout


def _options(help_text):
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+|-[a-zA-Z])(?=[ ,=\]]|$)", help_text, re.M))


def test_every_daemon_option_is_documented(rendered, happac_help):
    opts = _options(happac_help)
    assert {"--patroni-host", "-h", "--help", "--version"} <= opts
    missing = sorted(o for o in opts if o not in rendered)
    assert not missing, "options in --help but not in happac(8): %s" % missing


def test_every_check_option_is_documented(rendered, happac_bin):
    r = subprocess.run([happac_bin, "check", "--help"], capture_output=True, text=True,
                       timeout=10, env=clean_env())
    opts = _options(r.stdout)
    assert {"--host", "--port", "--timeout", "--help"} <= opts
    missing = sorted(o for o in opts if o not in rendered)
    assert not missing, "happac check options not in happac(8): %s" % missing


def test_every_reply_of_the_readme_is_documented(rendered):
    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    replies = re.findall(r"^\| `((?:up|down)[^`]*)` \|", readme, re.M)
    assert len(replies) >= 10, replies
    for reply in replies:
        # Variable parts (HOST:PORT, N, 800ms, the endpoint, …) are written
        # as placeholders in the man page; the fixed words must all be there,
        # in the same order, in one entry.
        fixed = [w for w in re.split(
            r"HOST:PORT|HOST|DIR/\.s\.PGSQL\.PORT|primary|\d+ms|N\.Ns|…", reply)
            if w.strip(" :")]
        pattern = r".{0,40}".join(re.escape(w.strip()) for w in fixed)
        assert re.search(pattern, rendered), "reply %r not in happac(8)" % reply


@pytest.mark.parametrize("needle", [
    "EXIT STATUS", "SIGTERM", "SIGINT", "SIGHUP", "READY=1", "STATUS=", "STOPPING=1",
    "WATCHDOG=1", "RELOADING=1", "HAPPAC_CONFIG", "HAPPAC_", "/etc/haproxy/happac.env",
    "GET /health", "command line > environment > configuration file", "Consul",
])
def test_sections_and_words(rendered, needle):
    assert needle in rendered
