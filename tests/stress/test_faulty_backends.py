"""Faulty backends: every fault ends as `down #reason` within one interval +
one timeout of its start, the probe rounds keep their schedule meanwhile,
and the verdict returns to `up` once the backend is fixed. Each transition
is logged exactly once.

happac runs with --interval 500ms --timeout 300ms here. A fault that starts
just after a round began is seen by the next round, which starts at most one
interval later and ends at most one timeout after that: hence
interval + timeout (+ SLACK for the polling client and a busy 2-core box).

Recovery: after a Patroni failure, a role that became right again is held
back for interval + timeout + haproxy-agent-inter ("down #patroni: primary
role is new, settling", src/profile.c, so that an old and a new primary are
never both UP in HAProxy): up again within 2 x (interval + timeout) +
haproxy-agent-inter + SLACK, through exactly that one settling line. After a pure PgBouncer failure there is no hold.
"""

import os
import re
import shlex
import shutil
import socket
import subprocess
import threading
import time

import pytest

import stresslib as sl

INTERVAL, TIMEOUT = 0.5, 0.3
SLACK = 0.15
BOUND = INTERVAL + TIMEOUT + SLACK
# detection, then the hold: interval + timeout + --haproxy-agent-inter
BOUND_UP_AFTER_PATRONI = 2 * (INTERVAL + TIMEOUT) + sl.AGENT_INTER + SLACK
# The fast rounds after a role change last a hold's time (src/main_hold.c)
# from the round that sees it, up to an interval after the change.
ROLE_CHANGE_FAST = INTERVAL + (INTERVAL + TIMEOUT + sl.AGENT_INTER) + SLACK
T_MS = int(TIMEOUT * 1000)
TARGET = re.escape("%s:%d" % (sl.BACKEND_ADDR, sl.PATRONI_PORT))

PATRONI_FAULTS = [
    ("503", r"down #patroni /primary: 503"),
    ("garbage", r"down #patroni %s: bad response: .+" % TARGET),
    ("bigbody", r"down #patroni %s: bad response: body over \d+ bytes" % TARGET),
    ("bigbody_cl", r"down #patroni %s: bad response: .+" % TARGET),
    ("drip", r"down #patroni: timeout after %dms" % T_MS),
    ("redirect", r"down #patroni /primary: 302"),
    ("hang", r"down #patroni: timeout after %dms" % T_MS),
]


def _start(happac, *extra, **kw):
    return happac(*extra, interval="%dms" % (INTERVAL * 1000), timeout="%dms" % T_MS, **kw)


def _check_schedule(stamps, what):
    """Probe rounds on time: consecutive starts (the stand-in's accepts) are
    one interval apart, shortened by up to 10% of jitter (src/probe.c)."""
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert len(gaps) >= 3, "%s: only %d probe attempts seen" % (what, len(stamps))
    lo, hi = 0.9 * INTERVAL - 0.03, INTERVAL + 0.06
    late = [round(g, 3) for g in gaps if not lo <= g <= hi]
    assert not late, "%s: probe rounds off schedule (want %.2f-%.2fs apart): %s" % (
        what, lo, hi, late)
    return min(gaps), max(gaps)


def _fault_and_recover(h, standins, server, mode, pattern):
    want = re.compile(pattern + r"\n\Z")
    up_line = b"up\n"
    sl.wait_line(lambda r: r == up_line, 5, "up before the fault")
    n_verdicts = len(h.verdicts())
    standins.reset()
    t0 = time.monotonic()
    standins.set(**{server: mode})
    reply, took = sl.wait_line(lambda r: want.match(r.decode("latin-1")) is not None,
                               BOUND + 2, "the %s fault %r to show" % (server, mode))
    took = time.monotonic() - t0
    assert took <= BOUND, "%s %s: down after %.3fs, bound %.2fs (%r)" % (
        server, mode, took, BOUND, reply)
    # Stay down, unchanged, for 5 more rounds: no flapping, and the rounds
    # keep their schedule although the backend misbehaves. A 503 whose
    # status says "replica" is a demotion as happac sees it: rounds follow
    # fast for a hold's time after it (src/main_hold.c), then the schedule.
    fast_for = ROLE_CHANGE_FAST if (server, mode) == ("patroni", "503") else 0.0
    t_obs = time.monotonic() + 5 * INTERVAL + fast_for
    while time.monotonic() < t_obs:
        r = sl.agent_check()[0]
        assert r == reply, "%s %s: reply changed to %r" % (server, mode, r)
        time.sleep(0.05)
    stats = standins.stats()
    stamps = [t for t, m in stats["events"][server] if t >= t0 + fast_for and m == mode]
    gaps = _check_schedule(stamps, "%s %s" % (server, mode))
    t1 = time.monotonic()
    standins.set(**{server: "ok"})
    settle = [sl.SETTLING_RE] if server == "patroni" else []
    bound_up = BOUND_UP_AFTER_PATRONI if server == "patroni" else BOUND
    way_up = sl.wait_sequence("up", settle, bound_up + 2, start=reply)
    back = time.monotonic() - t1
    assert back <= bound_up, "%s %s: up again after %.3fs, bound %.2fs (via %s)" % (
        server, mode, back, bound_up, way_up)
    assert len(way_up) == 1 + len(settle), "%s %s: back up via %s" % (server, mode, way_up)
    v = h.verdicts()[n_verdicts:]
    want = [("up", reply.decode()[:-1])] + [("down", line) for line in way_up]
    assert v == want, "%s %s: logged transitions %s, want exactly %s" % (server, mode, v, want)
    return took, back, gaps, stats


@pytest.mark.parametrize("mode,pattern", PATRONI_FAULTS, ids=[m for m, _ in PATRONI_FAULTS])
def test_patroni_fault(happac, standins, mode, pattern):
    h = _start(happac)
    fds0 = h.fds()
    took, back, gaps, stats = _fault_and_recover(h, standins, "patroni", mode, pattern)
    sl.report("patroni-" + mode, down_s=round(took, 3), up_s=round(back, 3),
              round_gap_s=[round(g, 3) for g in gaps], body_bytes_sent=stats["sent"]["patroni"])
    if mode.startswith("bigbody"):
        # happac stops reading at its body cap: the stand-in never gets to
        # push the 100 MB (what it did write sits in socket buffers).
        attempts = len([1 for _, m in stats["events"]["patroni"] if m == mode])
        assert stats["sent"]["patroni"] <= attempts * 16 * 1024 * 1024, stats["sent"]
    assert h.alive()
    sl.poll_until(lambda: h.fds() <= fds0 + 1, 3, what="fds back to %d" % fds0)


def test_pgbouncer_accepts_and_never_answers(happac, standins):
    h = _start(happac)
    took, back, gaps, _ = _fault_and_recover(h, standins, "pg", "hang",
                                             r"down #pgbouncer: timeout after %dms" % T_MS)
    sl.report("pgbouncer-hang", down_s=round(took, 3), up_s=round(back, 3),
              round_gap_s=[round(g, 3) for g in gaps])


def test_unresolvable_name(happac):
    """-h under the reserved .invalid TLD (RFC 6761): it never resolves.
    The reply says so from the first round, and rounds keep their pace."""
    host = "no-such-node.invalid"
    t0 = time.monotonic()
    h = _start(happac, "-v", host=host)
    reply, _ = sl.wait_line(lambda r: r.startswith(b"down"), 5, "first reply")
    first = time.monotonic() - t0
    assert reply == ("down #patroni: cannot resolve %s\n" % host).encode(), reply
    # the first round starts at once; it must end within the timeout
    assert first <= TIMEOUT + 0.5, "first reply after %.2fs" % first
    # count probe rounds over 3 s in the debug log
    n0 = h.log().count("probe patroni:")
    time.sleep(3.0)
    n = h.log().count("probe patroni:") - n0
    assert 3.0 / INTERVAL - 1 <= n <= 3.0 / (0.9 * INTERVAL) + 1, (
        "%d patroni rounds in 3 s at a %.1fs interval" % (n, INTERVAL))
    assert h.log().count("cannot resolve") >= 1
    sl.report("dns-invalid", first_reply_s=round(first, 3), rounds_in_3s=n)


# --------------------------------------------------------------------------
# A name whose resolution hangs (a DNS server that never answers). happac's
# probes must time out like any other hang, and nothing may block the loop:
# the agent keeps answering within its bound while lookups hang.

SILENT_DNS = ("127.0.0.58", 53)


@pytest.fixture
def silent_dns(workdir):
    """A UDP socket on 127.0.0.58:53 that reads queries and never answers,
    and a resolv.conf that points at it (bind-mounted for happac only)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(SILENT_DNS)
    except OSError as e:
        pytest.skip("cannot bind %s:%d: %s" % (SILENT_DNS + (e,)))
    seen = []
    stop = threading.Event()

    def drain():
        s.settimeout(0.1)
        while not stop.is_set():
            try:
                seen.append(s.recv(4096))
            except socket.timeout:
                pass
            except OSError:
                return
    t = threading.Thread(target=drain, daemon=True)
    t.start()
    conf = os.path.join(workdir, "resolv.silent.conf")
    with open(conf, "w") as f:
        f.write("nameserver %s\noptions timeout:5 attempts:2\n" % SILENT_DNS[0])
    os.chmod(conf, 0o644)
    yield conf, seen
    stop.set()
    t.join(2)
    s.close()


def test_hanging_dns_does_not_block_the_agent(workdir, silent_dns):
    if os.geteuid() != 0 or subprocess.call(["unshare", "-m", "true"]) != 0 \
            or not shutil.which("setpriv"):
        pytest.skip("needs root, unshare(1) and setpriv(1) for a private resolv.conf")
    conf, seen = silent_dns
    host = "slow-dns-node.example"
    # happac in its own mount namespace, where /etc/resolv.conf is ours;
    # unshare, sh and setpriv exec, so the pid stays happac's (stop by pid)
    # and happac runs as nobody once the mount is made.
    prefix = ["unshare", "-m", "sh", "-c",
              'mount --bind %s /etc/resolv.conf && exec setpriv --reuid=%d --regid=%d '
              '--clear-groups "$0" "$@"' % (shlex.quote(conf), sl.NOBODY, sl.NOBODY)]
    args = sl.happac_args("%dms" % (INTERVAL * 1000), "%dms" % T_MS, host)
    h = sl.Happac(workdir, args, name="happac-dns", prefix=prefix, as_root=True)
    t0 = time.monotonic()
    try:
        # The first round: both lookups hang, both probes must end at the
        # deadline, and the agent answer right after.
        reply, _ = sl.wait_line(lambda r: r.startswith(b"down"), 30, "first reply")
        first = time.monotonic() - t0
        assert seen, "happac never asked the silent DNS server"
        # Lookups keep hanging (10 s each); checks must stay prompt. (A
        # check over 100 ms counts as failed: that bounds the run.)
        checker = sl.start_checker(workdir, 300, 10, timeout_ms=100)
        res = sl.finish_json(checker, 120)
        lat = sl.summarize_latency(res)
        sl.report("dns-hang", first_reply_s=round(first, 3), checks=lat, queries=len(seen))
        assert h.alive(), h.log()
        assert reply == b"down #patroni: timeout after %dms\n" % T_MS, reply
        assert first <= TIMEOUT + 0.5, (
            "first reply %.1fs after start, want <= %.1fs: the event loop waits for "
            "the hung lookup" % (first, TIMEOUT + 0.5))
        problems = sl.latency_problems(lat)
        assert not problems, "agent checks while a DNS lookup hung: %s" % "; ".join(problems)
    finally:
        t_stop = time.monotonic()
        rc = h.stop()
        stop_s = time.monotonic() - t_stop
    assert rc == 0, "exit %s:\n%s" % (rc, h.log())
    assert stop_s <= 2.0, "SIGTERM took %.1fs" % stop_s
