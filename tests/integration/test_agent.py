"""happac agent-check daemon against real PostgreSQL + PgBouncer and a Patroni stand-in.

Timing bounds: a fault injected at t0 must show in the reply within
interval + timeout + MARGIN. Why that bound: the next probe round starts at
most one interval after t0, and its probe gives up at the timeout. MARGIN
(default 0.3 s, env HAPPAC_TEST_MARGIN for slow sanitizer builds) covers our
20 ms polling step, the duration of the healthy round running at t0 (a few ms),
scheduling on a 2-core machine shared with other engineers' clusters and
benchmarks, and interpreter start/IPC noise; it stays well below one default
interval, so a daemon that needed an extra round would still fail.
"""

import os
import re
import signal
import socket
import struct
import subprocess
import time

import pytest

import procs
from agent_client import (check, equals, is_up, query, starts, validate,
                          wait_answering, wait_reply)
from procs import ADDR, AGENT_PORT, PATRONI_PORT, PGB_PORT, run_happac

MARGIN = float(os.environ.get("HAPPAC_TEST_MARGIN", "0.3"))
FAST_INTERVAL = 0.2   # --interval 200ms
FAST_TIMEOUT = 0.15   # --timeout 150ms
FAST_AGENT_INTER = 0.2  # --haproxy-agent-inter 200ms (conftest)
FAST_BOUND = FAST_INTERVAL + FAST_TIMEOUT + MARGIN
# Patroni answering 200 again after a failure is held for interval + timeout
# + haproxy-agent-inter before "up" (so two servers are never UP in HAProxy
# together on a switchover).
FAST_RECOVERY = FAST_BOUND + FAST_INTERVAL + FAST_TIMEOUT + FAST_AGENT_INTER
DEFAULT_INTERVAL = 1.0
DEFAULT_TIMEOUT = 0.8


def assert_stays(port, expected, seconds, addr=ADDR):
    """Every reply over `seconds` (several probe rounds) equals expected."""
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        reply, _ = check(port, addr)
        assert reply == expected, "reply changed to %r (expected %r to hold)" % (reply, expected)
        n += 1
        time.sleep(0.02)
    assert n > 0


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


# --------------------------------------------------------------------------
# Healthy and Patroni verdicts

def test_primary_up(backends, happac):
    _, standin = backends
    h = happac()
    reply, secs = check(AGENT_PORT)
    assert reply == "up\n"
    assert secs < 0.1
    assert_stays(AGENT_PORT, "up\n", 3 * FAST_INTERVAL)
    st = standin.stats()
    # One Patroni request per round: GET on the -k endpoint (Patroni builds the
    # same status for OPTIONS; the body's state tells the handover a role is
    # changing, issue 16).
    assert st["last_request"] == "GET /primary", st
    assert set(st["by_method"]) == {"GET"}, st
    # Rounds run every interval: about 1 s / 200 ms = 5 probes so far, at least 3.
    assert st["requests"] >= 3, st
    assert h.alive()


def test_endpoint_503_then_recovery_logs_transitions(backends, happac):
    _, standin = backends
    h = happac()
    assert check(AGENT_PORT)[0] == "up\n"
    standin.set("503")
    reply, secs = wait_reply(AGENT_PORT, equals("down #patroni /primary: 503\n"), FAST_BOUND)
    assert_stays(AGENT_PORT, "down #patroni /primary: 503\n", 3 * FAST_INTERVAL)
    standin.set("primary")
    wait_reply(AGENT_PORT, is_up, FAST_RECOVERY, what="up after 503 ends")
    log = h.log()
    lines = [l for l in log.splitlines() if "verdict" in l]
    assert any(re.search(r"\bup\b.*\bdown\b", l) for l in lines), "no up->down line:\n" + log
    assert any(re.search(r"\bdown\b.*\bup\b", l) for l in lines), "no down->up line:\n" + log


def test_endpoint_path_is_the_k_option(backends, happac):
    """A replica-only Patroni: -k replica is up, -k primary is down with /primary."""
    _, standin = backends
    standin.set("replica")
    happac(endpoint="replica")
    assert check(AGENT_PORT)[0] == "up\n"
    # GET, not OPTIONS: a replica profile requires streaming by default, which
    # Patroni's JSON tells (replication_state); -k primary needs no body.
    assert standin.stats()["last_request"] == "GET /replica"
    happac(endpoint="primary", port=AGENT_PORT + 1)
    assert check(AGENT_PORT + 1)[0] == "down #patroni /primary: 503\n"


def test_patroni_refused_then_recovers(backends, happac, extra_standins):
    """Nothing listens on the Patroni port: refused. Then the stand-in starts
    (up), is stopped again (refused again), and comes back (up)."""
    port = 8011
    assert procs.port_free(ADDR, port)
    want = "down #patroni %s:%d: connection refused\n" % (ADDR, port)
    happac(patroni_port=port)
    assert check(AGENT_PORT)[0] == want
    assert_stays(AGENT_PORT, want, 3 * FAST_INTERVAL)
    s = extra_standins(port, 8098)
    wait_reply(AGENT_PORT, is_up, FAST_RECOVERY, what="up once Patroni listens")
    s.stop()
    wait_reply(AGENT_PORT, equals(want), FAST_BOUND, what="refused after the stand-in stopped")
    s.start()
    wait_reply(AGENT_PORT, is_up, FAST_RECOVERY, what="up after the stand-in restarted")


def test_patroni_hung_default_timing(backends, happac):
    """Daemon defaults (--interval 1s --timeout 800ms): a hung Patroni is a timeout."""
    _, standin = backends
    h = happac(interval=None, timeout=None)
    assert check(AGENT_PORT)[0] == "up\n"
    standin.reset()
    t0 = time.monotonic()
    standin.set("hang")
    bound = DEFAULT_INTERVAL + DEFAULT_TIMEOUT + MARGIN
    _, secs = wait_reply(AGENT_PORT, equals("down #patroni: timeout after 800ms\n"), bound)
    elapsed = time.monotonic() - t0
    # Not before a hanging request could have waited its full 800 ms (a probe
    # whose connect preceded the switch by a few ms is the only slack).
    assert elapsed >= DEFAULT_TIMEOUT - 0.05, "timeout reported after only %.3fs" % elapsed
    standin.set("primary")
    # Patroni answering again after a silence is a role that is new to
    # happac: held for interval + timeout before "up" (no two primaries).
    wait_reply(AGENT_PORT, is_up, bound + DEFAULT_INTERVAL + DEFAULT_TIMEOUT,
               what="up after the hang ends")
    # The deadline closed every hung request at ~800 ms: none left open, none
    # cut short, none held much longer.
    st = procs.poll_until(lambda: (lambda s: s if s["hung_open"] == 0 else None)(standin.stats()),
                          2.0, what="hung probe sockets closed")
    durs = st["hung_durations"]
    assert st["hung_total"] >= 1 and durs, st
    assert all(DEFAULT_TIMEOUT - 0.05 <= d <= DEFAULT_TIMEOUT + MARGIN for d in durs), durs
    assert h.alive()


@pytest.mark.parametrize("mode", ["garbage", "close"])
def test_patroni_bad_response_is_down(backends, happac, mode):
    _, standin = backends
    h = happac()
    standin.set(mode)
    reply, _ = wait_reply(AGENT_PORT, starts("down #patroni"), FAST_BOUND)
    # It is a fast failure with a reason of its own, not a timeout.
    assert "timeout" not in reply, reply
    standin.set("primary")
    wait_reply(AGENT_PORT, is_up, FAST_RECOVERY)
    assert h.alive()


def test_slow_patroni_within_and_beyond_timeout(backends, happac):
    _, standin = backends
    happac(interval="200ms", timeout="300ms")
    standin.set("slow:60")
    assert_stays(AGENT_PORT, "up\n", 5 * FAST_INTERVAL)  # 60 ms < 300 ms: still up
    standin.set("slow:600")
    wait_reply(AGENT_PORT, equals("down #patroni: timeout after 300ms\n"), 0.2 + 0.3 + MARGIN)


# --------------------------------------------------------------------------
# PgBouncer verdicts (the real PgBouncer)

def test_pgbouncer_killed_then_restarted(backends, happac):
    pgbouncer, _ = backends
    happac()
    assert check(AGENT_PORT)[0] == "up\n"
    pgbouncer.kill()
    want = "down #pgbouncer %s:%d: connection refused\n" % (ADDR, PGB_PORT)
    wait_reply(AGENT_PORT, equals(want), FAST_BOUND)
    assert_stays(AGENT_PORT, want, 3 * FAST_INTERVAL)
    pgbouncer.start()
    wait_reply(AGENT_PORT, is_up, FAST_BOUND, what="up after PgBouncer restart")


def test_pgbouncer_frozen_is_timeout(backends, happac):
    pgbouncer, _ = backends
    happac()
    assert check(AGENT_PORT)[0] == "up\n"
    t0 = time.monotonic()
    pgbouncer.freeze()
    try:
        # The kernel still completes the TCP handshake (listen backlog), so
        # only the probe's deadline can notice a frozen PgBouncer.
        wait_reply(AGENT_PORT, equals("down #pgbouncer: timeout after 150ms\n"), FAST_BOUND)
        assert time.monotonic() - t0 >= FAST_TIMEOUT - 0.05
        assert_stays(AGENT_PORT, "down #pgbouncer: timeout after 150ms\n", 3 * FAST_INTERVAL)
    finally:
        pgbouncer.thaw()
    wait_reply(AGENT_PORT, is_up, FAST_BOUND, what="up after SIGCONT")


def test_both_down_reports_patroni(backends, happac):
    pgbouncer, standin = backends
    happac()
    pgbouncer.kill()
    standin.set("503")
    wait_reply(AGENT_PORT, equals("down #patroni /primary: 503\n"), FAST_BOUND)
    assert_stays(AGENT_PORT, "down #patroni /primary: 503\n", 4 * FAST_INTERVAL)
    standin.set("primary")
    # through the hold ("primary role is new, settling"), then PgBouncer's reason
    wait_reply(AGENT_PORT, starts("down #pgbouncer"), FAST_RECOVERY)


# --------------------------------------------------------------------------
# Reply shape and the answering path

def test_reply_bytes_exact(backends, happac):
    _, standin = backends
    happac()
    raw, _ = query(AGENT_PORT)
    assert raw == b"up\n"
    standin.set("503")
    wait_reply(AGENT_PORT, starts("down"), FAST_BOUND)
    raw, _ = query(AGENT_PORT)
    assert raw == b"down #patroni /primary: 503\n"
    assert raw.count(b"\n") == 1 and raw.endswith(b"\n")


def test_long_endpoint_keeps_reason_short(backends, happac):
    """Reasons stay < 100 bytes even when the endpoint path alone is longer."""
    _, standin = backends
    standin.set("503")
    endpoint = "replica?tag_key=" + "x" * 110
    h = happac(endpoint=endpoint, wait_ready=False)
    try:
        rc = h.proc.wait(timeout=0.5)
    except subprocess.TimeoutExpired:
        rc = None  # still running: it accepted the long -k
    if rc is not None:
        # Rejecting an over-long endpoint is acceptable, but only as a usage
        # error naming the option.
        assert rc == 2 and "-k" in h.log(), (rc, h.log())
        return
    reply, _ = wait_answering(h)
    # validate() (inside check) already enforced < 100 bytes and one \n.
    assert reply.startswith("down #patroni"), reply


def test_probe_storm_answers_stay_fast(backends, happac):
    """1000 checks while every Patroni probe hangs for its full deadline."""
    _, standin = backends
    interval, timeout = 0.25, 0.2   # a probe is in flight 80% of the time
    h = happac(interval="250ms", timeout="200ms")
    standin.set("hang")
    want = "down #patroni: timeout after 200ms\n"
    wait_reply(AGENT_PORT, equals(want), interval + timeout + MARGIN)
    fds_before = fd_count(h.proc.pid)
    hung_before = standin.stats()["hung_total"]
    times, bad = [], []
    t_start = time.monotonic()
    for i in range(1000):
        reply, secs = query(AGENT_PORT)
        times.append(secs)
        if reply != want.encode():
            bad.append((i, reply))
        time.sleep(0.002)  # spread the storm over ~10 probe rounds
    span = time.monotonic() - t_start
    hung_during = standin.stats()["hung_total"] - hung_before
    times_sorted = sorted(times)
    summary = "max %.1f ms, p99 %.1f ms, median %.1f ms over %.2f s, %d hung probes" % (
        times_sorted[-1] * 1e3, times_sorted[989] * 1e3, times_sorted[500] * 1e3, span,
        hung_during)
    print(summary)
    assert not bad, "wrong replies during the storm: %r" % bad[:5]
    assert hung_during >= int(span / interval) - 2, "probes did not hang as planned: " + summary
    slow = [t for t in times if t >= 0.1]
    assert not slow, "%d checks took >= 100 ms (%s)" % (len(slow), summary)
    assert times_sorted[-1] < timeout, summary  # none waited for the probe deadline
    # Neither the hung probes nor 1000 agent connections leaked descriptors.
    standin.set("primary")
    wait_reply(AGENT_PORT, is_up, 2 * (interval + timeout) + MARGIN)
    procs.poll_until(lambda: fd_count(h.proc.pid) <= fds_before + 1, 2.0,
                     what="fd count back to %d (now %d)" % (fds_before, fd_count(h.proc.pid)))
    assert standin.stats()["hung_open"] == 0


def test_clients_that_hang_up_early_do_not_hurt(backends, happac):
    """HAProxy may close or reset before reading: no SIGPIPE death, no leak."""
    h = happac()
    fds_before = fd_count(h.proc.pid)
    for i in range(300):
        s = socket.create_connection((ADDR, AGENT_PORT), timeout=2)
        if i % 2:
            # RST instead of FIN.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    assert check(AGENT_PORT)[0] == "up\n"
    assert h.alive()
    procs.poll_until(lambda: fd_count(h.proc.pid) <= fds_before + 1, 2.0,
                     what="fd count back to %d" % fds_before)


def test_client_sending_data_still_gets_one_line(backends, happac):
    """With `agent-send`, HAProxy writes first, then reads: the reply must not
    be lost to a reset (a close with unread input sends RST). 50 tries, since
    whether the input arrives before the daemon closes is a race."""
    happac()
    for i in range(50):
        s = socket.create_connection((ADDR, AGENT_PORT), timeout=2)
        try:
            s.sendall(b"hello from haproxy\n")
            data = b""
            while True:
                try:
                    b = s.recv(4096)
                except ConnectionResetError:
                    pytest.fail("try %d: connection reset after %r" % (i, data))
                if not b:
                    break
                data += b
        finally:
            s.close()
        assert validate(data) == "up\n"


# --------------------------------------------------------------------------
# Start-up, command line, shutdown

def test_original_command_line(backends, happac):
    """The command line of the script happac replaces, unchanged (no --listen)."""
    port = 25521
    if not procs.port_free("0.0.0.0", port):
        pytest.skip("port %d is taken on this machine" % port)
    happac(args=["-h", ADDR, "-p", str(port), "-r", str(PGB_PORT), "-x", "",
                 "-o", str(PATRONI_PORT), "-k", "primary"],
           port=port, listen=None, connect_addr=ADDR)
    reply, _ = check(port, ADDR)
    assert reply == "up\n"


def test_first_answer_after_start_is_up(backends, happac):
    """Restarted happac never says `down` while it has not probed yet."""
    for n in range(3):
        h = happac(wait_ready=False)
        deadline = time.monotonic() + 5
        while True:   # connect as early as possible: ECONNREFUSED until bound
            try:
                reply, secs = check(AGENT_PORT, timeout=5)
                break
            except ConnectionRefusedError:
                assert h.alive(), h.log()
                assert time.monotonic() < deadline, "happac never listened"
                time.sleep(0.002)
        assert reply == "up\n", "start %d: first reply %r" % (n, reply)
        assert h.stop() == 0, h.log()


def test_early_connection_waits_for_first_round(backends, happac):
    """A check that arrives before the first round ends is answered after it."""
    _, standin = backends
    standin.set("hang")
    t0 = time.monotonic()
    h = happac(interval="200ms", timeout="500ms", wait_ready=False)
    while True:
        try:
            reply, secs = check(AGENT_PORT, timeout=5)
            break
        except ConnectionRefusedError:
            assert h.alive(), h.log()
            assert time.monotonic() - t0 < 5, "happac never listened"
            time.sleep(0.002)
    assert reply == "down #patroni: timeout after 500ms\n", reply
    # It waited for the first round's verdict (~500 ms) instead of guessing.
    assert time.monotonic() - t0 >= 0.45


def _stderr_line(err):
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, "expected one line on stderr, got %r" % err
    return lines[0]


BASE = ["-h", ADDR, "-r", str(PGB_PORT), "--listen", ADDR, "-p", str(AGENT_PORT)]


@pytest.mark.parametrize("args,words", [
    (BASE + ["--bogus"], ["--bogus"]),
    (BASE + ["-p", "0"], ["-p", "0"]),
    (BASE + ["-p", "70000"], ["-p", "70000"]),
    (BASE + ["--interval", "abc"], ["--interval", "abc"]),
    (BASE + ["--timeout", "-5ms"], ["--timeout", "-5ms"]),
    (["-r", str(PGB_PORT), "--listen", ADDR, "-p", str(AGENT_PORT)], ["-h"]),
    (["-h", ADDR, "--listen", ADDR, "-p", str(AGENT_PORT)], ["-r"]),
], ids=["unknown", "port0", "port70000", "interval-abc", "timeout-negative",
        "missing-h", "missing-r"])
def test_bad_command_line_exits_2(happac_bin, args, words):
    rc, out, err, secs = run_happac(args)
    assert rc == 2, "exit %s, stderr %r" % (rc, err)
    line = _stderr_line(err)
    for w in words:
        assert w in line, "%r not named in %r" % (w, line)
    assert secs < 2


def test_help_exits_0(happac_bin):
    rc, out, err, _ = run_happac(["--help"])
    assert rc == 0, err
    assert "usage" in out.lower()
    for opt in ("-h", "-r", "-o", "-k", "-p", "-x", "--listen", "--interval",
                "--timeout", "--stale-after"):
        assert opt in out, "--help does not mention %s" % opt


def test_version_exits_0(happac_bin):
    rc, out, err, _ = run_happac(["-V"])
    assert rc == 0, err
    assert out.strip(), "-V printed nothing on stdout"


def test_taken_port_fails_fast(backends, happac_bin, workdir):
    port = AGENT_PORT + 2
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind((ADDR, port))
    blocker.listen(1)
    try:
        t0 = time.monotonic()
        try:
            rc, out, err, _ = run_happac(["-h", ADDR, "-r", str(PGB_PORT), "--listen", ADDR,
                                          "-p", str(port), "--interval", "200ms",
                                          "--timeout", "150ms"], timeout=2)
        except Exception as exc:  # subprocess.TimeoutExpired
            pytest.fail("happac still running 2 s after start on a taken port: %s" % exc)
        assert time.monotonic() - t0 < 2
        assert rc != 0
        assert str(port) in err, err
        assert any(w in err.lower() for w in ("in use", "bind", "listen")), err
    finally:
        blocker.close()


@pytest.mark.parametrize("state", ["healthy", "probe-hung"])
def test_sigterm_exits_0_promptly(backends, happac, state):
    _, standin = backends
    if state == "probe-hung":
        # A 5 s probe deadline in flight must not delay shutdown.
        standin.set("hang")
        h = happac(interval="200ms", timeout="5s", wait_ready=False)
        procs.poll_until(lambda: standin.stats()["hung_open"] > 0, 5, what="a hung probe")
    else:
        h = happac()
    t0 = time.monotonic()
    h.proc.send_signal(signal.SIGTERM)
    rc = h.proc.wait(timeout=5)
    secs = time.monotonic() - t0
    assert rc == 0, h.log()
    assert secs < 1.0, "SIGTERM took %.2fs" % secs
