"""The soak (select with -m soak): >= 1M agent checks while the backends
fail and recover underneath, bounded in time.

bench/loadgen (C, epoll; built from bench/loadgen.c into the work directory
when the binary is missing) does SOAK_CHECKS checks (default 1,000,000) with
16 in flight from 127.0.0.54-59. Meanwhile this test walks the stand-ins
through a seeded random sequence of states (Patroni ok, 503, hang, garbage,
a 100 MB body, a redirect; PgBouncer ok, hang), one change at a time,
waiting after each change until the agent says what that state means (a
Patroni that recovers passes through one `... role is new, settling` line,
the hold of src/profile.c; no other line is accepted on the way). happac runs with --interval 200ms --timeout
300ms.

Asserted:
- every check is answered with a valid line (loadgen: no errors, every
  reply `up` or `down`);
- every verdict transition we caused is logged exactly once, in order, and
  nothing else is logged as one (the `verdict A -> B` lines of stderr);
- no fd growth: the idle fd count at the end equals the one at the start;
- no memory growth: RSS at the end <= RSS after warm-up + 1 MiB;
- happac is alive throughout and exits 0 on SIGTERM (fixture).
"""

import os
import random
import re
import shutil
import subprocess
import time

import pytest

import stresslib as sl

CHECKS = int(os.environ.get("SOAK_CHECKS", "1000000"))
MAX_SECONDS = int(os.environ.get("SOAK_MAX_SECONDS", "480"))
INTERVAL_MS, TIMEOUT_MS = 200, 300
WAIT = (INTERVAL_MS + TIMEOUT_MS) / 1000.0 + 2.0  # per transition, under full load


def _loadgen(workdir):
    path = os.path.join(sl.REPO, "bench", "loadgen")
    if os.access(path, os.X_OK):
        return path
    src = os.path.join(sl.REPO, "bench", "loadgen.c")
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not (os.path.exists(src) and cc):
        pytest.skip("bench/loadgen is missing and cannot be built")
    out = os.path.join(workdir, "loadgen")
    subprocess.check_call([cc, "-O2", "-o", out, src])
    return out


PATRONI_STATES = ["ok", "503", "hang", "garbage", "bigbody", "redirect"]
PG_STATES = ["ok", "hang"]
TARGET = re.escape("%s:%d" % (sl.BACKEND_ADDR, sl.PATRONI_PORT))


def _expected(patroni, pg):
    """The reply line a state means, as a regex (libcurl's error texts are
    not ours to pin down); the first failing probe gives the reason."""
    if patroni == "503":
        return re.escape("down #patroni /primary: 503")
    if patroni == "redirect":
        return re.escape("down #patroni /primary: 302")
    if patroni == "hang":
        return re.escape("down #patroni: timeout after %dms" % TIMEOUT_MS)
    if patroni == "garbage":
        # anything but the body cap's text, or bigbody's line would match
        return r"down #patroni %s: bad response: (?!body over)[^\n]+" % TARGET
    if patroni == "bigbody":
        return r"down #patroni %s: bad response: body over \d+ bytes" % TARGET
    if pg == "hang":
        return re.escape("down #pgbouncer: timeout after %dms" % TIMEOUT_MS)
    return "up"


def _parse_kv(line):
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


@pytest.mark.soak
def test_soak_million_checks_with_failures(workdir, happac, standins):
    loadgen = _loadgen(workdir)
    h = happac(interval="%dms" % INTERVAL_MS, timeout="%dms" % TIMEOUT_MS)
    t_start = time.monotonic()
    rng = random.Random(7)
    state = {"patroni": "ok", "pg": "ok"}
    seen = ["up"]  # the line after each transition we caused, in order
    n_logged0 = len(h.verdicts())
    fds_start = min(h.fds() for _ in range(20))

    lg = sl.Proc("loadgen", [loadgen, "-a", sl.AGENT_ADDR, "-p", str(sl.AGENT_PORT),
                             "-c", "16", "-n", str(CHECKS), "-t", str(MAX_SECONDS),
                             "-S", ",".join(sl.HOSTILE_SRCS), "-w", "2000", "-l", "soak"],
                 os.path.join(workdir, "loadgen.log"), stdout=subprocess.PIPE)
    samples = []  # (t, rss, fds)
    steps = 0
    try:
        while lg.alive() and time.monotonic() - t_start < MAX_SECONDS + 30:
            assert h.alive(), "happac died during the soak:\n" + h.log()[-5000:]
            samples.append((time.monotonic() - t_start, h.rss_kb(), h.fds()))
            server = rng.choice(["patroni", "pg"])
            choices = PATRONI_STATES if server == "patroni" else PG_STATES
            new = rng.choice([c for c in choices if c != state[server]])
            before = _expected(**state)
            state[server] = new
            pattern = _expected(**state)
            standins.set(**{server: new})
            steps += 1
            if pattern != before:
                # A Patroni that recovers passes through the settling hold
                # (src/profile.c): one extra line, and one extra transition.
                recovers = server == "patroni" and new == "ok"
                seen += sl.wait_sequence(pattern, [sl.SETTLING_RE] if recovers else [],
                                         WAIT + (INTERVAL_MS + TIMEOUT_MS) / 1000.0,
                                         start=(seen[-1] + "\n").encode())
            # keep the state for 0-3 more rounds (same line: nothing to log)
            time.sleep(rng.uniform(0, 3 * INTERVAL_MS / 1000.0))
        out, _ = lg.popen.communicate(timeout=60)
    finally:
        lg.stop()
    # back to healthy, then measure the end state at idle
    if state != {"patroni": "ok", "pg": "ok"}:
        recovers = state["patroni"] != "ok"
        state = {"patroni": "ok", "pg": "ok"}
        standins.set(patroni="ok", pg="ok")
        seen += sl.wait_sequence("up", [sl.SETTLING_RE] if recovers else [],
                                 WAIT + (INTERVAL_MS + TIMEOUT_MS) / 1000.0,
                                 start=(seen[-1] + "\n").encode())
    sl.wait_line(lambda r: r == b"up\n", WAIT, "up at the end")
    time.sleep(3 * INTERVAL_MS / 1000.0)
    fds_end = min(h.fds() for _ in range(20))
    rss_end = h.rss_kb()
    runtime = time.monotonic() - t_start

    res = _parse_kv(out.decode())
    logged = [line for _, line in h.verdicts()[n_logged0:]]
    warm = [rss for t, rss, _ in samples if t >= 5.0][:5] or [samples[0][1]]
    rss_warm = max(warm)
    sl.report("soak", checks=int(res.get("checks", 0)), cps=res.get("cps"),
              errors=res.get("errors"), p99_us=res.get("lat_p99_us"),
              max_us=res.get("lat_max_us"), transitions=len(seen) - 1,
              logged=len(logged) - 0, steps=steps, fds_start=fds_start, fds_end=fds_end,
              rss_warm_kb=rss_warm, rss_end_kb=rss_end, runtime_s=round(runtime, 1))

    assert int(res["checks"]) >= CHECKS, "loadgen stopped early (time bound?): %s" % out
    assert int(res["errors"]) == 0, "checks failed: %s" % out
    assert int(res["reply_up"]) + int(res["reply_down"]) == int(res["checks"]), out
    # the fixture's happac logged "none -> up" before n_logged0
    assert logged == seen[1:], (
        "logged transitions differ from the ones caused (%d caused, %d logged)\n"
        "caused: %s\nlogged: %s" % (len(seen) - 1, len(logged), seen[1:], logged))
    assert fds_end <= fds_start, "fds grew from %d to %d" % (fds_start, fds_end)
    sl.assert_rss(rss_end <= rss_warm + 1024, "RSS grew from %d to %d kB" % (rss_warm, rss_end))
    assert re.search(r"happac info: ready", h.log())
