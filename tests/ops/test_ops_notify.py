"""systemd notify (docs/PROTOCOLS.md section 5), received on a NOTIFY_SOCKET that
the test owns, from a real bin/happac against the Patroni and PgBouncer
stand-ins. What systemd would see: READY=1 only once the agent answers,
STATUS= with the verdict, STOPPING=1 on SIGTERM, WATCHDOG=1 at half of
WATCHDOG_USEC (and only for the pid systemd watches), RELOADING=1 with
MONOTONIC_USEC on SIGHUP followed by READY=1, and a broken socket that
never stops the daemon."""

import os
import shutil
import signal
import tempfile
import time
import uuid

import pytest

from notify_socket import NotifySocket
from ops_procs import ADDR_NOTIFY, clean_env, poll_until

ADDR = ADDR_NOTIFY


@pytest.fixture
def sockdir():
    # Short, private directory: sun_path holds at most 107 bytes.
    d = tempfile.mkdtemp(prefix="happac-ops-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def notify(sockdir):
    n = NotifySocket(path=os.path.join(sockdir, "notify.sock"))
    yield n
    n.close()


def is_ready(f):
    return f.get("READY") == "1"


def test_ready_status_stopping(backends, happac, notify):
    patroni, pgb = backends(ADDR)
    h = happac(ADDR, patroni, pgb, env=clean_env(NOTIFY_SOCKET=notify.env_value))

    _, pid, fields, text = notify.wait_for(is_ready, 15, "READY=1")
    assert pid == h.pid, "READY=1 must come from the main pid (NotifyAccess=main)"
    assert fields.get("STATUS") == "up", "READY=1 carries the verdict: %r" % text
    # READY=1 means "answering": the agent must give a verdict right now.
    assert h.query() == b"up\n"

    # A verdict transition shows in STATUS= (what `systemctl status` prints).
    patroni.role = "replica"
    _, pid, fields, text = notify.wait_for(
        lambda f: f.get("STATUS", "").startswith("down"), 15, "STATUS=down ...")
    assert pid == h.pid
    assert fields["STATUS"].startswith("down #patroni") and "/primary: 503" in fields["STATUS"], text
    assert "READY" not in fields, "a status change is not a new READY=1: %r" % text
    assert "\n" not in fields["STATUS"]
    patroni.role = "primary"
    notify.wait_for(lambda f: f.get("STATUS") == "up", 15, "STATUS=up again")

    h.send_signal(signal.SIGTERM)
    _, pid, fields, _ = notify.wait_for(lambda f: f.get("STOPPING") == "1", 10, "STOPPING=1")
    assert pid == h.pid
    assert h.wait(10) == 0
    assert sum(1 for m in notify.messages if is_ready(m[2])) == 1, "READY=1 only once"
    assert not any("WATCHDOG" in m[2] for m in notify.messages), \
        "no WATCHDOG=1 without WATCHDOG_USEC"


def test_ready_waits_for_first_round(backends, happac, notify):
    """With a Patroni that hangs longer than the probe timeout, READY=1 still
    comes (after the first round, with a down verdict), never before it."""
    patroni, pgb = backends(ADDR, role="stopped")
    h = happac(ADDR, patroni, pgb, env=clean_env(NOTIFY_SOCKET=notify.env_value))
    _, pid, fields, text = notify.wait_for(is_ready, 15, "READY=1")
    assert pid == h.pid
    assert fields.get("STATUS", "").startswith("down #patroni"), text
    assert h.query().startswith(b"down #patroni")


def test_abstract_socket(backends, happac):
    name = "happac-ops-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
    n = NotifySocket(abstract=name)
    try:
        patroni, pgb = backends(ADDR)
        h = happac(ADDR, patroni, pgb, env=clean_env(NOTIFY_SOCKET=n.env_value))
        _, pid, fields, _ = n.wait_for(is_ready, 15, "READY=1 on @%s" % name)
        assert pid == h.pid and fields.get("STATUS") == "up"
        h.send_signal(signal.SIGTERM)
        n.wait_for(lambda f: f.get("STOPPING") == "1", 10, "STOPPING=1")
        assert h.wait(10) == 0
    finally:
        n.close()


def test_watchdog(backends, happac, notify):
    patroni, pgb = backends(ADDR)
    usec = 300000  # pings every 150ms
    h = happac(ADDR, patroni, pgb,
               env=clean_env(NOTIFY_SOCKET=notify.env_value, WATCHDOG_USEC=usec))
    notify.wait_for(is_ready, 15, "READY=1")
    times = []
    for i in range(4):
        t, pid, _, _ = notify.wait_for(lambda f: f.get("WATCHDOG") == "1", 2,
                                       "WATCHDOG=1 #%d" % (i + 1))
        assert pid == h.pid
        times.append(t)
    gaps = [b - a for a, b in zip(times, times[1:])]
    # Half the period, with room for a loaded machine, and never a busy loop.
    assert all(0.05 <= g <= 0.30 for g in gaps), "watchdog gaps %r (expected ~0.15s)" % gaps
    assert "watchdog every 0.150s" in h.log()
    h.send_signal(signal.SIGTERM)
    notify.wait_for(lambda f: f.get("STOPPING") == "1", 10, "STOPPING=1")
    assert h.wait(10) == 0


def test_watchdog_pid_is_ours(backends, happac, notify):
    """WATCHDOG_PID equal to happac's pid: pings. The shell execs happac, so
    $$ is happac's pid (as systemd sets it for the main process)."""
    patroni, pgb = backends(ADDR)
    h = happac(ADDR, patroni, pgb,
               env=clean_env(NOTIFY_SOCKET=notify.env_value, WATCHDOG_USEC=200000),
               argv_prefix=["/bin/sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"',
                            "sh"])
    _, pid, _, _ = notify.wait_for(lambda f: f.get("WATCHDOG") == "1", 15, "WATCHDOG=1")
    assert pid == h.pid


def test_watchdog_pid_not_ours(backends, happac, notify):
    """WATCHDOG_PID of another process (a variable inherited by mistake): no
    pings. Proving an absence takes a fixed wait: 8 would-be periods."""
    patroni, pgb = backends(ADDR)
    h = happac(ADDR, patroni, pgb,
               env=clean_env(NOTIFY_SOCKET=notify.env_value, WATCHDOG_USEC=100000,
                             WATCHDOG_PID=os.getpid()))
    notify.wait_for(is_ready, 15, "READY=1")
    notify.drain(0.4)
    assert not any("WATCHDOG" in m[2] for m in notify.messages), \
        [m[3] for m in notify.messages]
    assert h.alive()


def test_reload_sends_reloading_then_ready(backends, happac, notify):
    """systemd holds `systemctl reload` until READY=1 follows RELOADING=1."""
    patroni, pgb = backends(ADDR)
    h = happac(ADDR, patroni, pgb, env=clean_env(NOTIFY_SOCKET=notify.env_value))
    notify.wait_for(is_ready, 15, "READY=1")
    before = int(time.monotonic() * 1e6)  # CLOCK_MONOTONIC, like happac's
    h.send_signal(signal.SIGHUP)
    _, pid, fields, text = notify.wait_for(lambda f: f.get("RELOADING") == "1", 10,
                                           "RELOADING=1 after SIGHUP")
    assert pid == h.pid
    mono = int(fields.get("MONOTONIC_USEC", "0"))
    assert before <= mono <= int(time.monotonic() * 1e6), text
    _, pid, _, _ = notify.wait_for(is_ready, 10, "READY=1 after the reload")
    assert pid == h.pid
    assert h.query() == b"up\n"


def test_failed_reload_still_ends_with_ready(backends, happac, notify, sockdir):
    """A bad config file on SIGHUP: the old config stays, and systemd still
    gets READY=1 (otherwise `systemctl reload` would hang until its timeout)."""
    patroni, pgb = backends(ADDR)
    conf = os.path.join(sockdir, "happac.conf")
    with open(conf, "w") as f:
        f.write("interval = 100ms\n")
    h = happac(ADDR, patroni, pgb, extra=["-c", conf],
               env=clean_env(NOTIFY_SOCKET=notify.env_value))
    notify.wait_for(is_ready, 15, "READY=1")
    with open(conf, "w") as f:
        f.write("interval = soon\n")
    h.send_signal(signal.SIGHUP)
    notify.wait_for(lambda f: f.get("RELOADING") == "1", 10, "RELOADING=1 after SIGHUP")
    notify.wait_for(is_ready, 10, "READY=1 after the failed reload")
    poll_until(lambda: "reload failed" in h.log(), 5, what="the reload error in the log")
    assert h.query() == b"up\n", "the running configuration stays in force"


def test_sighup_before_the_first_round_does_not_signal_ready(backends, happac, notify):
    """READY=1 means "answering with a real verdict". A SIGHUP while the first
    round is still running (Patroni hangs for the whole --timeout) must not
    produce an early READY=1 through the reload path."""
    patroni, pgb = backends(ADDR, role="hang")
    h = happac(ADDR, patroni, pgb, extra=["--timeout", "2s"],
               env=clean_env(NOTIFY_SOCKET=notify.env_value))
    # The first probe request proves the loop runs (signal handlers are set).
    poll_until(lambda: patroni.requests >= 1 or not h.alive(), 10,
               what="the first Patroni probe")
    t_hup = time.monotonic()
    h.send_signal(signal.SIGHUP)
    t, _, fields, text = notify.wait_for(is_ready, 15, "READY=1")
    assert fields.get("STATUS", "").startswith("down #patroni: timeout"), \
        "the first READY=1 must carry the first round's verdict: %r (all: %r)" % (
            text, [m[3] for m in notify.messages])
    assert t - t_hup >= 1.0, "READY=1 came %.2fs after SIGHUP, before the round ended" % (
        t - t_hup)


def test_unreachable_socket_is_not_fatal(backends, happac, sockdir):
    """Nobody listens on NOTIFY_SOCKET: happac runs and answers as usual and
    logs the failure once, not once per watchdog tick."""
    patroni, pgb = backends(ADDR)
    path = os.path.join(sockdir, "nobody.sock")
    h = happac(ADDR, patroni, pgb,
               env=clean_env(NOTIFY_SOCKET=path, WATCHDOG_USEC=100000))
    h.wait_line("up")
    poll_until(lambda: "notify: cannot send" in h.log(), 10, what="the notify warning")
    # 50ms ticks: during this fixed wait ~8 more sends fail, none may be logged.
    time.sleep(0.4)
    assert h.log().count("notify: cannot send") == 1, h.log()
    assert h.alive()
    h.send_signal(signal.SIGTERM)
    assert h.wait(10) == 0


def test_bad_notify_socket_value_is_ignored(backends, happac):
    patroni, pgb = backends(ADDR)
    h = happac(ADDR, patroni, pgb, env=clean_env(NOTIFY_SOCKET="relative/path"))
    h.wait_line("up")
    assert "ignoring NOTIFY_SOCKET='relative/path'" in h.log()
