"""Helpers for happac's stress tests: processes, the agent client, /proc.

Addresses (loopback, ours only): happac listens on 127.0.0.51; the backend
stand-ins live on 127.0.0.52; hostile and measuring clients connect from
127.0.0.53 .. 127.0.0.59, so that nothing here touches another engineer's
addresses or exhausts the ephemeral ports of 127.0.0.1.

Every child runs in its own session and is registered; a fixture finalizer,
atexit and SIGTERM stop them by pid (process group). Readiness is always a
signal polled against a deadline, never a fixed sleep.
"""

import functools
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

import agentcheck
import harness
from harness import PYTHON, REPO, happac_bin, poll_until, port_free  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))

AGENT_ADDR = "127.0.0.51"
AGENT_PORT = 5555
HTTP_PORT = 8080
BACKEND_ADDR = "127.0.0.52"
PATRONI_PORT = 8008
PG_PORT = 6432
CONTROL_PORT = 8099
FLOOR_PORT = 5556                    # bench/floor, beside happac (test_flood)
CLIENT_ADDRS = ["127.0.0.%d" % i for i in range(53, 60)]
CHECK_SRC = CLIENT_ADDRS[0]          # the well-behaved checker
HOSTILE_SRCS = CLIENT_ADDRS[1:]      # everybody else


@functools.lru_cache(maxsize=None)
def _has_asan(path):
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def sanitized():
    """True for an ASan build: its allocator keeps freed memory in a
    quarantine (256 MB by default), so RSS bounds do not apply; everything
    else does, and ASan/LSan reports fail the run (exit status)."""
    return _has_asan(happac_bin())


def assert_rss(ok, message):
    if not sanitized():
        assert ok, message


def clean_env(extra=None):
    """The environment for children (harness.clean_env): happac here runs
    as nobody, not as root."""
    return harness.clean_env(extra)


def Proc(name, argv, log_path, env=None, stdout=None, preexec_fn=None):
    """harness.Proc with this suite's clean environment by default."""
    return harness.Proc(name, argv, log_path, env=env if env is not None else clean_env(),
                        stdout=stdout, preexec_fn=preexec_fn)


# --------------------------------------------------------------------------
# /proc

def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def rss_kb(pid):
    return int(proc_status(pid)["VmRSS"].split()[0])


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


# --------------------------------------------------------------------------
# Agent client

def agent_check(addr=AGENT_ADDR, port=AGENT_PORT, timeout=2.0, src=CHECK_SRC):
    """One well-behaved check: (reply bytes, seconds connect->EOF)."""
    return agentcheck.query(port, addr, timeout, src)


def try_check(addr=AGENT_ADDR, port=AGENT_PORT, timeout=2.0, src=CHECK_SRC):
    return agentcheck.try_query(port, addr, timeout, src)


def wait_line(pred, timeout, what, step=0.01, **kw):
    """Poll the agent until pred(reply) holds; return (reply, seconds waited)."""
    t0 = time.monotonic()
    last = [None]

    def probe():
        r = try_check(**kw)
        last[0] = r
        return r if r is not None and pred(r) else None
    try:
        r = poll_until(probe, timeout, step=step, what=what)
    except TimeoutError as e:
        raise AssertionError("%s; last reply %r" % (e, last[0])) from None
    return r, time.monotonic() - t0


SETTLING_RE = r"down #patroni: \S+ role is new, settling"


def wait_sequence(final, allowed=(), timeout=5.0, step=0.01, start=None):
    """Poll the agent until its line matches the regex `final`; every other
    line seen on the way must match one of `allowed`. Returns the distinct
    lines seen in order (the final one last), `start` (the line before the
    change) left out. Raises AssertionError on a line that is not allowed or
    on timeout."""
    final_rx = re.compile(final + r"\n\Z")
    allowed_rx = [re.compile(a + r"\n\Z") for a in allowed]
    seen, last = [], start
    deadline = time.monotonic() + timeout
    while True:
        r = try_check()
        if r is not None and r != last:
            text = r.decode("latin-1")
            if final_rx.match(text):
                seen.append(text[:-1])
                return seen
            if not any(a.match(text) for a in allowed_rx):
                raise AssertionError("unexpected line %r on the way to %r (seen %s)"
                                     % (r, final, seen))
            seen.append(text[:-1])
            last = r
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %r; seen %s, last %r"
                                 % (timeout, final, seen, r))
        time.sleep(step)


def validate_line(reply):
    """HAProxy's view (docs/PROTOCOLS.md section 1): one ASCII line ending in one \\n, no
    NUL/CR, a health word, a #reason under 100 bytes."""
    assert reply, "empty reply"
    assert reply.endswith(b"\n") and reply.count(b"\n") == 1, "not one line: %r" % reply
    assert b"\0" not in reply and b"\r" not in reply, "NUL/CR: %r" % reply
    text = reply.decode("ascii")[:-1]
    assert text.split()[0] in ("up", "down"), "no health word: %r" % reply
    if "#" in text:
        assert len(text.split("#", 1)[1].encode()) < 100, "reason too long: %r" % reply
    return text


# --------------------------------------------------------------------------
# Stand-ins (Patroni + PgBouncer), one process

class Standins:
    def __init__(self, workdir):
        self.workdir = workdir
        self.proc = None

    def start(self):
        for port in (PATRONI_PORT, PG_PORT, CONTROL_PORT):
            if not port_free(BACKEND_ADDR, port):
                raise RuntimeError("%s:%d is taken (a leftover run?)" % (BACKEND_ADDR, port))
        self.proc = Proc("standins", [PYTHON, os.path.join(HERE, "standins.py"), BACKEND_ADDR,
                                      str(PATRONI_PORT), str(PG_PORT), str(CONTROL_PORT)],
                         os.path.join(self.workdir, "standins.log"), stdout=subprocess.PIPE)
        line = b""
        deadline = time.monotonic() + 10
        # "ready" on stdout once every port listens
        os.set_blocking(self.proc.popen.stdout.fileno(), False)
        while time.monotonic() < deadline and b"ready" not in line:
            try:
                chunk = self.proc.popen.stdout.read()
            except BlockingIOError:
                chunk = None
            if chunk:
                line += chunk
            elif not self.proc.alive():
                break
            else:
                time.sleep(0.01)
        if b"ready" not in line:
            raise RuntimeError("stand-ins did not start:\n" + self.proc.log())
        return self

    def cmd(self, text):
        s = socket.create_connection((BACKEND_ADDR, CONTROL_PORT), timeout=5)
        try:
            s.sendall(text.encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                b = s.recv(1 << 20)
                if not b:
                    break
                buf += b
        finally:
            s.close()
        out = buf.decode().strip()
        if out.startswith("error"):
            raise RuntimeError("stand-in: " + out)
        return out

    def set(self, patroni=None, pg=None):
        if patroni:
            self.cmd("patroni " + patroni)
        if pg:
            self.cmd("pg " + pg)

    def stats(self):
        return json.loads(self.cmd("stats"))

    def reset(self):
        self.cmd("reset")

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None


# --------------------------------------------------------------------------
# happac

VERDICT_RE = re.compile(r" happac info: verdict (\S+) -> (.*) \(patroni ")


NOBODY = 65534


def drop_to_nobody():
    """happac refuses to run as root (and needs no privilege): a test run as
    root starts it as nobody."""
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)


class Happac:
    def __init__(self, workdir, args, name="happac", preexec_fn=None, prefix=(),
                 as_root=False):
        """prefix: a wrapper that ends by exec'ing happac (same pid).
        preexec_fn runs as root before the switch to nobody (unless as_root)."""
        self.args = list(args)
        fd, self.log_path = tempfile.mkstemp(prefix=name + "-", suffix=".log", dir=workdir)
        os.close(fd)

        def preexec():
            if preexec_fn:
                preexec_fn()
            if not as_root:
                drop_to_nobody()
        self.proc = Proc(name, list(prefix) + [happac_bin()] + self.args, self.log_path,
                         preexec_fn=preexec)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.alive()

    def log(self):
        return self.proc.log()

    def verdicts(self):
        """Every logged transition: [(from, line)]."""
        return VERDICT_RE.findall(self.log())

    def rss_kb(self):
        return rss_kb(self.pid)

    def fds(self):
        return fd_count(self.pid)

    def nofile(self):
        """happac's own soft descriptor limit (it raises it to the hard one)."""
        with open("/proc/%d/limits" % self.pid) as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
        raise RuntimeError("no 'Max open files' in /proc/%d/limits" % self.pid)

    def stop(self):
        return self.proc.stop()


AGENT_INTER = 0.2  # --haproxy-agent-inter: the fast lab's HAProxy asks every 200ms


def happac_args(interval="200ms", timeout="150ms", host=BACKEND_ADDR, extra=()):
    args = ["-h", host, "-o", str(PATRONI_PORT), "-r", str(PG_PORT), "-p", str(AGENT_PORT),
            "--listen", AGENT_ADDR, "--haproxy-agent-inter", "%dms" % (AGENT_INTER * 1000)]
    if interval:
        args += ["--interval", interval]
    if timeout:
        args += ["--timeout", timeout]
    return args + list(extra)


# --------------------------------------------------------------------------
# Subprocess clients: the measuring checker and the hostile flood

def start_checker(workdir, count, interval_ms, timeout_ms=1000, start_file=None, send=None,
                  port=AGENT_PORT):
    """send: what to send after connect (HAProxy's agent-send), e.g. "primary\n"."""
    argv = [PYTHON, os.path.join(HERE, "checker.py"), AGENT_ADDR, str(port),
            str(count), str(interval_ms), str(timeout_ms), CHECK_SRC]
    if start_file:
        argv.append(start_file)
    return Proc("checker", argv, os.path.join(workdir, "checker.log"),
                stdout=subprocess.PIPE, env=clean_env({"CHECK_SEND": send} if send else None))


def finish_json(proc, timeout):
    """Wait for a subprocess client and parse its one JSON line."""
    try:
        out, _ = proc.popen.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.stop()
        raise AssertionError("%s did not finish within %ss:\n%s" % (proc.name, timeout, proc.log()))
    proc.stop()
    try:
        return json.loads(out)
    except ValueError:
        raise AssertionError("%s printed no JSON (rc %s): %r\n%s"
                             % (proc.name, proc.popen.returncode, out[-2000:], proc.log())) from None


def floor_bin():
    """bench/floor (`make -C bench floor`; `make stress` builds it), or None."""
    path = os.path.join(REPO, "bench", "floor")
    return path if os.access(path, os.X_OK) else None


def start_floor(workdir):
    """bench/floor on AGENT_ADDR:FLOOR_PORT, answering "up\n"; None when it
    is not built. Runs as nobody at normal priority, like happac."""
    path = floor_bin()
    if not path:
        return None
    if not port_free(AGENT_ADDR, FLOOR_PORT):
        raise RuntimeError("%s:%d is taken (a leftover run?)" % (AGENT_ADDR, FLOOR_PORT))
    p = Proc("floor", [path, AGENT_ADDR, str(FLOOR_PORT)], os.path.join(workdir, "floor.log"),
             preexec_fn=drop_to_nobody)
    try:
        poll_until(lambda: try_check(port=FLOOR_PORT) or not p.alive(), 5, what="bench/floor")
    except TimeoutError:
        p.stop()
        raise
    if not p.alive():
        raise RuntimeError("bench/floor exited at start:\n" + p.log())
    return p


def start_flood(workdir, mode, count, hold=5.0, sources=None, extra=(), ready_file=None,
                port=AGENT_PORT):
    argv = [PYTHON, os.path.join(HERE, "flood.py"), "--addr", AGENT_ADDR, "--port", str(port),
            "--sources", ",".join(sources or HOSTILE_SRCS), "--count", str(count),
            "--mode", mode, "--hold", str(hold)] + list(extra)
    if ready_file:
        argv += ["--ready-file", ready_file]
    return Proc("flood-" + mode, argv, os.path.join(workdir, "flood.log"), stdout=subprocess.PIPE)


def peak_fds(h, clients, step):
    """Sample happac's open descriptors while any of clients runs (and happac
    lives; three minutes at most: they end on their own well before); the
    highest count seen."""
    peak = 0
    deadline = time.monotonic() + 180
    while any(c.alive() for c in clients) and h.alive() and time.monotonic() < deadline:
        peak = max(peak, h.fds())
        time.sleep(step)
    return peak


def percentile(values, p):
    values = sorted(values)
    if not values:
        return None
    return values[min(len(values) - 1, int(len(values) * p / 100.0))]


def summarize_latency(res):
    lat = res["lat_us"]
    return {
        "n": len(lat), "errors": res["errors"],
        "p50_ms": percentile(lat, 50) / 1000.0 if lat else None,
        "p99_ms": percentile(lat, 99) / 1000.0 if lat else None,
        "max_ms": max(lat) / 1000.0 if lat else None,
        "over_10ms": sum(1 for v in lat if v > 10000),
    }


# The bounds on a well-behaved check while hostile clients are at work
# (issue 7: "a normal check still gets its answer within 10 ms"), over >= 600
# checks: every one answered within 10 ms (max), p99 <= 5 ms, none lost.
#
# How they are measured: the checker (checker.py) times connect() to EOF on
# the monotonic clock, in its own process, with the garbage collector off and
# at nice -10 when root (it stands for HAProxy on another machine: its own
# wake-up delays are not happac's). The hostile clients (flood.py) run at
# SCHED_IDLE: a real attacker's CPU is not ours. happac runs at normal
# priority, as in production.
#
# What this leaves to the machine (2-core VM, measured): the server's side of
# a loopback connection (accept, write, close, and the kernel work they
# cause) costs ~20 us of CPU for bench/floor, a do-nothing epoll server, and
# happac alike, i.e. ~50k connections/s on one core; the 10k flood opens
# them at ~40k/s. The accept queue is FIFO, so a normal check waits behind
# every flood connection not yet accepted, and at ~80 % of the server's
# capacity that queue grows whenever the server loses its core for a moment.
# The slow checks all fall in the ~0.25 s in which the flood opens its
# connections, and the checker's worst time tracks the flood's own worst
# connect-to-FIN time. Neither the SYN (connect() ~20 us: no SYN retry, the
# queue never fills) nor the checker's own scheduling is the cause. On a
# quiet machine most runs meet max <= 10 ms for both servers, but not all
# (floor and happac each had runs at 12-25 ms). So the flood test measures
# bench/floor under the same load in the same run (`make stress`) and
# reports both: when the floor missed too, the machine was slow, not happac.
LAT_P99_MS = 5.0
LAT_MAX_MS = 10.0


# Latency bounds are speed targets: on a shared, noisy machine they belong to
# `make stress` (STRESS_TIMING=1), not to the CI run of `make test`, which
# keeps every functional check (no check lost, right lines, fds, memory).
TIMING = os.environ.get("STRESS_TIMING", "") not in ("", "0")


def latency_problems(lat):
    """[] when a checker's figures meet the bounds above, else the reasons."""
    out = []
    if lat["errors"]:
        out.append("checks failed: %s" % lat["errors"])
    if not lat["n"]:
        return out + ["no check answered"]
    if not TIMING:
        return out
    if lat["p99_ms"] > LAT_P99_MS:
        out.append("p99 %.2f ms > %.0f ms" % (lat["p99_ms"], LAT_P99_MS))
    if lat["max_ms"] > LAT_MAX_MS:
        out.append("max %.1f ms > %.0f ms (%d of %d checks over 10 ms)"
                   % (lat["max_ms"], LAT_MAX_MS, lat["over_10ms"], lat["n"]))
    return out


def report(name, **figures):
    """Print a figure line (shown with -s, and kept in the -rA summary)."""
    sys.stdout.write("FIGURES %s %s\n" % (name, json.dumps(figures, sort_keys=True)))
