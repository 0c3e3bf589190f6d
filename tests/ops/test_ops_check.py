"""`happac check`: the one-shot client for Consul script checks.

Exit status 0 only for an agent that says up; 2 for down, refused, a silent
server past --timeout, a malformed reply and bad arguments. Against a real
happac (with the Patroni/PgBouncer stand-ins), a port nobody listens on, a
server that accepts and never answers, and a scripted agent stand-in for the
reply parser (read the words as HAProxy reads them)."""

import subprocess
import time

import pytest

from ops_procs import (ADDR_CHECK, ADDR_REFUSED, ADDR_SCRIPTED, ADDR_SILENT, clean_env,
                       free_port)
from ops_standins import ScriptedAgent, SilentServer


def run_check(binary, *args, timeout=10):
    t0 = time.monotonic()
    r = subprocess.run([binary, "check"] + list(args), capture_output=True, text=True,
                       timeout=timeout, env=clean_env())
    return r, time.monotonic() - t0


@pytest.fixture
def node(backends, happac):
    patroni, pgb = backends(ADDR_CHECK)
    h = happac(ADDR_CHECK, patroni, pgb)
    h.wait_line("up")
    return patroni, h


def test_up_exits_0(happac_bin, node):
    _, h = node
    r, _ = run_check(happac_bin, "--host", h.addr, "--port", str(h.port))
    assert (r.returncode, r.stdout, r.stderr) == (0, "up\n", "")


def test_short_options_and_bracketed_host(happac_bin, node):
    _, h = node
    r, _ = run_check(happac_bin, "-h", "[%s]" % h.addr, "-p", str(h.port),
                     "--timeout=1s")
    assert (r.returncode, r.stdout) == (0, "up\n"), r.stderr


def test_down_exits_2(happac_bin, node):
    patroni, h = node
    patroni.role = "replica"
    line = h.wait_line("down")
    r, _ = run_check(happac_bin, "--host", h.addr, "--port", str(h.port))
    assert r.returncode == 2
    assert r.stdout == line, "prints the agent's line as it is"
    assert r.stdout.startswith("down #patroni") and "/primary: 503" in r.stdout


def test_refused_exits_2(happac_bin):
    port = free_port(ADDR_REFUSED)
    r, elapsed = run_check(happac_bin, "--host", ADDR_REFUSED, "--port", str(port))
    assert r.returncode == 2
    assert r.stdout == ""
    assert "%s:%d" % (ADDR_REFUSED, port) in r.stderr and "refused" in r.stderr.lower()
    assert elapsed < 2.0


def test_silent_server_times_out_with_2(happac_bin):
    s = SilentServer(ADDR_SILENT)
    try:
        r, elapsed = run_check(happac_bin, "--host", ADDR_SILENT, "--port", str(s.port),
                               "--timeout", "300ms")
    finally:
        s.stop()
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "no reply within 300ms" in r.stderr
    assert 0.28 <= elapsed < 2.0, "the deadline is kept: %.2fs" % elapsed


# The reply parser, against a scripted agent stand-in.
@pytest.mark.parametrize("reply,rc,printed", [
    (b"up\n", 0, "up\n"),
    (b"UP\r\n", 0, "UP\n"),
    (b"up #all good\n", 0, "up #all good\n"),
    (b"up 100% ready\n", 0, "up 100% ready\n"),
    (b"down,up\n", 0, "down,up\n"),          # the last health word wins
    (b"up\n" + b"down\n", 0, "up\n"),         # only the first line counts
    (b"up", 0, "up\n"),                       # the end of the connection ends the line
    (b"up #down\n", 0, "up #down\n"),         # '#' starts the description
    (b"down #patroni /primary: 503\n", 2, "down #patroni /primary: 503\n"),
    (b"fail\n", 2, "fail\n"),
    (b"stopped\n", 2, "stopped\n"),
    (b"up\tdown\n", 2, "up?down\n"),          # tab separates; printed without it
    (b"up maint\n", 2, "up maint\n"),         # out of rotation: critical
    (b"up drain\n", 2, "up drain\n"),
    (b"ready\n", 2, "ready\n"),               # no health word
    (b"\n", 2, "\n"),
    (b"garbage\n", 2, "garbage\n"),
    (b"uptime\n", 2, "uptime\n"),             # not a word match
    (b"", 2, ""),                             # closed without a reply
    (b"up\0\n", 2, ""),                       # HAProxy ignores a NUL
    (b"u" * 5000, 2, ""),                     # no line end within 4 KB
])
def test_reply_words(happac_bin, reply, rc, printed):
    agent = ScriptedAgent(ADDR_SCRIPTED, reply)
    try:
        r, _ = run_check(happac_bin, "--host", ADDR_SCRIPTED, "--port", str(agent.port))
    finally:
        agent.stop()
    assert (r.returncode, r.stdout) == (rc, printed), r.stderr


@pytest.mark.parametrize("args,names", [
    (["--port", "0"], "--port"),
    (["--port", "65536"], "--port"),
    (["--port", "55x"], "--port"),
    (["--port", ""], "--port"),
    (["--timeout", "5x"], "--timeout"),
    (["--timeout", "0"], "--timeout"),
    (["--timeout", "2h"], "--timeout"),
    (["--timeout", "61s"], "--timeout"),
    (["--host", ""], "--host"),
    (["--host", "[::1"], "--host"),
    (["--port"], "--port"),
    (["-p"], "-p"),
    (["--frobnicate"], "--frobnicate"),
    (["-z"], "-z"),
    (["extra"], "extra"),
])
def test_bad_arguments_exit_2_with_one_line(happac_bin, args, names):
    r, _ = run_check(happac_bin, *args)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("happac check: "), r.stderr
    assert names in lines[0], "the message names the option: %r" % lines[0]


def test_help(happac_bin):
    r, _ = run_check(happac_bin, "--help")
    assert r.returncode == 0 and r.stderr == ""
    for word in ("Usage: happac check", "--host", "--port", "--timeout", "Exit status"):
        assert word in r.stdout
