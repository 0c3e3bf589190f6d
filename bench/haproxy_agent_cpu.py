#!/usr/bin/python3
"""bench/haproxy_agent_cpu.py: HAProxy's own CPU for happac's agent checks (issue 16).

Three nodes on loopback (127.0.0.51-53), each with happac and counting stand-ins for
Patroni and PgBouncer (bench/standins.py); one HAProxy with one backend per profile
(primary, replica, read-only, sync: agent-send names it), three servers each, a TCP
check every 1s and the agent check every AGENT_INTER. For each agent-inter, HAProxy runs
for DURATION seconds and its CPU time (utime + stime from /proc) is read before and after;
happac's too. Prints one line per agent-inter: checks per second, HAProxy's and the three
happacs' CPU in percent of one core.

Usage: bench/haproxy_agent_cpu.py [--seconds N] [AGENT_INTER ...]   (default 20s; 1s 250ms)
Environment: HAPPAC_BIN (default bin/happac). Loopback only; run it as root (happac gets
--run-as-root) or as any user. Everything it starts is stopped by pid on exit.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
from standins import PatroniStandin, PgbouncerStandin  # noqa: E402

NODES = [f"127.0.0.{i}" for i in (51, 52, 53)]
PROFILES = ["primary", "replica", "read-only", "sync"]
AGENT_PORT, PGB_PORT = 5555, 6432
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wait_port(addr, port, timeout=10):
    import socket
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection((addr, port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {addr}:{port}")


def haproxy_cfg(agent_inter, sock):
    lines = ["global", f"    stats socket {sock} mode 600 level admin", "defaults",
             "    mode tcp", "    timeout connect 1s", "    timeout client 10s",
             "    timeout server 10s", "    timeout check 2s"]
    for prof in PROFILES:
        lines += [f"backend be_{prof}",
                  f"    default-server inter 1s fall 2 rise 2 agent-check agent-port {AGENT_PORT}"
                  f" agent-inter {agent_inter} agent-send \"{prof}\\n\""]
        lines += [f"    server node{i} {a}:{PGB_PORT} check" for i, a in enumerate(NODES, 1)]
    return "\n".join(lines) + "\n"


def main(argv):
    seconds = 20
    inters = []
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--seconds":
            seconds = int(args.pop(0))
        else:
            inters.append(a)
    inters = inters or ["1s", "250ms"]
    if not 1 <= seconds <= 300:
        sys.exit("--seconds: 1 to 300")
    happac = os.environ.get("HAPPAC_BIN") or os.path.join(ROOT, "bin", "happac")
    haproxy = shutil.which("haproxy") or sys.exit("haproxy not found")
    tmp = tempfile.mkdtemp(prefix="happac-bench-haproxy-")
    started, standins = [], []
    try:
        for a in NODES:
            pat = PatroniStandin(a, 8008).start()
            pgb = PgbouncerStandin(a, PGB_PORT).start()
            standins += [pat, pgb]
            argv_h = [happac, "-h", a, "-o", "8008", "-r", str(PGB_PORT), "-p", str(AGENT_PORT),
                      "--listen", a] + [x for p in PROFILES[1:] for x in ("--profile", p)]
            if os.geteuid() == 0:
                argv_h.append("--run-as-root")
            log = open(os.path.join(tmp, f"happac-{a}.log"), "w")
            started.append(subprocess.Popen(argv_h, stdout=log, stderr=log,
                                            start_new_session=True))
        for a in NODES:
            wait_port(a, AGENT_PORT)
        hap_pids = [p.pid for p in started]
        print(f"HAProxy {subprocess.run([haproxy, '-v'], capture_output=True, text=True).stdout.split()[2]}, "
              f"{len(PROFILES)} backends x {len(NODES)} servers, {seconds}s each")
        for inter in inters:
            cfg = os.path.join(tmp, f"haproxy-{inter}.cfg")
            with open(cfg, "w") as f:
                f.write(haproxy_cfg(inter, os.path.join(tmp, "admin.sock")))
            hp = subprocess.Popen([haproxy, "-db", "-f", cfg], stdout=subprocess.DEVNULL,
                                  stderr=open(os.path.join(tmp, "haproxy.log"), "a"),
                                  start_new_session=True)
            started.append(hp)
            try:
                time.sleep(2)  # past the first checks: the start is not the rate
                if hp.poll() is not None:
                    sys.exit(f"haproxy exited; see {tmp}/haproxy.log")
                h0, a0, w0 = cpu_s(hp.pid), sum(cpu_s(p) for p in hap_pids), time.monotonic()
                time.sleep(seconds)
                h1, a1, w1 = cpu_s(hp.pid), sum(cpu_s(p) for p in hap_pids), time.monotonic()
            finally:
                os.killpg(hp.pid, signal.SIGTERM)
                hp.wait(10)
                started.remove(hp)
            inter_s = float(inter[:-2]) / 1000 if inter.endswith("ms") else float(inter[:-1])
            rate = len(PROFILES) * len(NODES) / inter_s
            print(f"agent-inter {inter:>6}: {rate:5.0f} agent checks/s, HAProxy CPU "
                  f"{100 * (h1 - h0) / (w1 - w0):5.2f}% of one core, three happacs "
                  f"{100 * (a1 - a0) / (w1 - w0):5.2f}%")
    finally:
        for p in started:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                p.kill()
        for s in standins:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
