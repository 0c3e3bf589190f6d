"""The Consul examples in consul/, validated the way Consul would run them.

No Consul binary is needed (Debian 12 has none): the test reads every check
of consul/*.json, points it at a real happac (one per service, as on a node:
-k primary and -k replica) in front of the Patroni/PgBouncer stand-ins, runs
it as Consul's agent does (agent/checks/check.go), and maps the result with
Consul's rules (docs/PROTOCOLS.md section 4):
  HTTP check:   GET, no keep-alive, 2xx passing, 429 warning, else critical
                (errors and timeouts too); the body is the check's output.
  script check: args run directly; exit 0 passing, 1 warning, else critical
                (killed at the timeout too); stdout+stderr is the output.
Expected: the node as primary passes patroni-primary and fails
patroni-replica; as replica the other way round; with PgBouncer down both
are critical."""

import glob
import http.client
import json
import os
import re
import subprocess
import urllib.parse

import pytest

import files
import ops_procs
from ops_procs import ADDR_CONSUL, REPO, clean_env, free_port

CONSUL_DIR = os.path.join(REPO, "consul")
ADDR = ADDR_CONSUL
OUTPUT_MAX = 4096  # Consul keeps this much of a check's output


def consul_files():
    return sorted(glob.glob(os.path.join(CONSUL_DIR, "*.json")))


def load(path):
    with open(path) as f:
        return json.load(f)


def go_duration(s):
    """Seconds from a Go duration string as Consul parses it ("5s", "1m30s")."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise ValueError("not a Go duration: %r" % s)
    return sum(float(n) * units[u] for n, u in parts)


def env_file(path):
    with open(path) as f:
        return files.env_file(f.read())


# --------------------------------------------------------------------------
# Consul's check semantics

def consul_http_check(url, method="GET", timeout=10.0):
    """(status, output) as Consul's CheckHTTP would record them."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        conn.request(method, u.path + ("?" + u.query if u.query else ""), headers={
            "User-Agent": "Consul Health Check", "Accept": "text/plain, text/*, */*",
            "Connection": "close"})
        resp = conn.getresponse()
        body = resp.read(OUTPUT_MAX).decode("utf-8", "replace")
        code = resp.status
    except (OSError, http.client.HTTPException) as e:
        return "critical", "error: %s" % e
    finally:
        conn.close()
    if 200 <= code < 300:
        return "passing", body
    if code == 429:
        return "warning", body
    return "critical", body


def consul_script_check(args, timeout=30.0):
    """(status, output) as Consul's CheckMonitor (args form) would record them."""
    try:
        r = subprocess.run(args, capture_output=True, timeout=timeout, env=clean_env())
    except subprocess.TimeoutExpired:
        return "critical", "timed out"
    out = (r.stdout + r.stderr)[:OUTPUT_MAX].decode("utf-8", "replace")
    if r.returncode == 0:
        return "passing", out
    if r.returncode == 1:
        return "warning", out
    return "critical", out


# --------------------------------------------------------------------------
# The files themselves

def test_files_exist():
    names = [os.path.basename(p) for p in consul_files()]
    assert "happac-http.json" in names and "happac-script.json" in names, names


@pytest.mark.parametrize("path", consul_files(), ids=os.path.basename)
def test_definitions_are_well_formed(path):
    doc = load(path)
    assert set(doc) == {"services"}, "a Consul config file with a services list"
    services = doc["services"]
    assert {s["name"] for s in services} == {"patroni-primary", "patroni-replica"}
    assert len({s["id"] for s in services}) == len(services)
    for svc in services:
        role = svc["name"].split("-", 1)[1]
        assert role in svc["tags"]
        assert isinstance(svc["port"], int) and 1 <= svc["port"] <= 65535
        assert svc["checks"], "every service has a check"
        for chk in svc["checks"]:
            kinds = [k for k in ("http", "args", "tcp", "script") if k in chk]
            assert kinds in (["http"], ["args"]), \
                "one HTTP or args check (a TCP check says nothing about health): %r" % chk
            interval = go_duration(chk["interval"])
            timeout = go_duration(chk.get("timeout", "10s" if "http" in chk else "30s"))
            assert 0 < timeout <= interval * 2
            if "http" in chk:
                u = urllib.parse.urlsplit(chk["http"])
                assert u.scheme == "http" and u.path == "/health", chk["http"]
                # the profile is named: bare /health is Patroni's path, 200
                # on every node whose PostgreSQL runs, whatever its role
                assert urllib.parse.parse_qs(u.query) == {"profile": [role]}, chk["http"]
                assert chk.get("method", "GET") == "GET"
            else:
                args = chk["args"]
                assert args[0] == "/usr/local/bin/happac" and args[1] == "check", args
                opts = dict(zip(args[2::2], args[3::2]))
                assert set(opts) <= {"--host", "--port", "--timeout"}, args
                # happac's own deadline must fire first: a clean "critical"
                # with a message, not a kill by Consul.
                assert go_duration(opts["--timeout"]) < timeout, args


def test_script_ports_match_the_shipped_env_file():
    env = env_file(os.path.join(REPO, "systemd", "happac.env"))
    doc = load(os.path.join(CONSUL_DIR, "happac-script.json"))
    ports = {}
    for svc in doc["services"]:
        args = svc["checks"][0]["args"]
        ports[svc["name"]] = args[args.index("--port") + 1]
    assert ports["patroni-primary"] == env["AGENT_PORT"]
    assert ports["patroni-replica"] != ports["patroni-primary"]


def test_both_files_define_the_same_services():
    a, b = (load(os.path.join(CONSUL_DIR, n)) for n in ("happac-http.json", "happac-script.json"))
    strip = [{k: v for k, v in s.items() if k != "checks"} for s in a["services"]]
    assert strip == [{k: v for k, v in s.items() if k != "checks"} for s in b["services"]]


# --------------------------------------------------------------------------
# Every check, run against real happac instances

SCENARIOS = {
    # stand-in state -> expected Consul status per service
    "primary": {"patroni-primary": "passing", "patroni-replica": "critical"},
    "replica": {"patroni-primary": "critical", "patroni-replica": "passing"},
    "pgbouncer-down": {"patroni-primary": "critical", "patroni-replica": "critical"},
}


def _start_node(backends, happac, with_http):
    patroni, pgb = backends(ADDR)
    inst = {}
    for name, endpoint in (("patroni-primary", "primary"), ("patroni-replica", "replica")):
        extra = []
        http_port = None
        if with_http:
            http_port = free_port(ADDR)
            extra = ["--http-listen", "%s:%d" % (ADDR, http_port)]
        h = happac(ADDR, patroni, pgb, endpoint=endpoint, extra=extra)
        h.http_port = http_port
        inst[name] = h
    return patroni, pgb, inst


def _enter(scenario, patroni, pgb, inst):
    if scenario == "pgbouncer-down":
        patroni.role = "primary"
        pgb.stop()
    else:
        patroni.role = scenario
    for name, h in inst.items():
        want = "up" if SCENARIOS[scenario][name] == "passing" else "down"
        h.wait_line(want)


def _each_check(name, backends, happac, scenario, with_http):
    """A node in `scenario`; (service, its happac, check) for every check of
    the Consul example `name`."""
    doc = load(os.path.join(CONSUL_DIR, name))
    patroni, pgb, inst = _start_node(backends, happac, with_http=with_http)
    _enter(scenario, patroni, pgb, inst)
    for svc in doc["services"]:
        for chk in svc["checks"]:
            yield svc, inst[svc["name"]], chk


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_http_checks(backends, happac, scenario):
    for svc, h, chk in _each_check("happac-http.json", backends, happac, scenario, True):
        u = urllib.parse.urlsplit(chk["http"])
        url = urllib.parse.urlunsplit(
            (u.scheme, "%s:%d" % (ADDR, h.http_port), u.path, u.query, ""))
        status, output = consul_http_check(url, chk.get("method", "GET"),
                                           go_duration(chk.get("timeout", "10s")))
        assert status == SCENARIOS[scenario][svc["name"]], (svc["name"], output)
        line = h.query().decode()
        assert output == line, "the body is the agent's line"


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_script_checks(happac_bin, backends, happac, scenario):
    for svc, h, chk in _each_check("happac-script.json", backends, happac, scenario, False):
        args = [happac_bin] + list(chk["args"][1:])
        args[args.index("--host") + 1] = h.addr
        args[args.index("--port") + 1] = str(h.port)
        status, output = consul_script_check(args, go_duration(chk.get("timeout", "30s")))
        assert status == SCENARIOS[scenario][svc["name"]], (svc["name"], output)
        assert output.splitlines()[0] == h.query().decode().rstrip("\n")


def test_script_check_against_a_stopped_agent_is_critical(happac_bin):
    doc = load(os.path.join(CONSUL_DIR, "happac-script.json"))
    chk = doc["services"][0]["checks"][0]
    args = [happac_bin] + list(chk["args"][1:])
    args[args.index("--host") + 1] = ADDR
    args[args.index("--port") + 1] = str(free_port(ADDR))
    status, output = consul_script_check(args, go_duration(chk["timeout"]))
    assert status == "critical" and "refused" in output.lower(), output


def test_http_check_against_a_stopped_agent_is_critical():
    status, output = consul_http_check("http://%s:%d/health" % (ADDR, free_port(ADDR)),
                                       timeout=2)
    assert status == "critical", output


def _run_file_checks(path, inst):
    """Run every check of one consul/*.json against inst; {service: (status, output)}."""
    out = {}
    for svc in load(path)["services"]:
        h = inst[svc["name"]]
        for chk in svc["checks"]:
            if "http" in chk:
                u = urllib.parse.urlsplit(chk["http"])
                url = urllib.parse.urlunsplit(
                    (u.scheme, "%s:%d" % (ADDR, h.http_port), u.path, u.query, ""))
                out[svc["name"]] = consul_http_check(url, chk.get("method", "GET"),
                                                     go_duration(chk.get("timeout", "10s")))
            else:
                args = [ops_procs.happac_bin()] + list(chk["args"][1:])
                args[args.index("--host") + 1] = h.addr
                args[args.index("--port") + 1] = str(h.port)
                out[svc["name"]] = consul_script_check(args, go_duration(chk.get("timeout", "30s")))
    return out


def test_drain_and_maint_are_not_passing(happac_bin, backends, happac,
                                         tmp_path):
    """`up drain` and `up maint` are up for HAProxy but out of its rotation:
    neither Consul check may list such a node. The replica service of a
    primary node drains (wrong-role = drain); an operator puts the primary
    in maintenance with `happac ctl maint`; `ready` passes again."""
    patroni, pgb = backends(ADDR)
    sock = str(tmp_path / "ctl.sock")
    conf = tmp_path / "replica.conf"
    conf.write_text("[profile replica]\nwrong-role = drain\n")
    inst = {}
    for name, endpoint, extra in (("patroni-primary", "primary", ["--control-socket", sock]),
                                  ("patroni-replica", "replica", ["-c", str(conf)])):
        port = free_port(ADDR)
        h = happac(ADDR, patroni, pgb, endpoint=endpoint,
                   extra=extra + ["--http-listen", "%s:%d" % (ADDR, port)])
        h.http_port = port
        inst[name] = h
    inst["patroni-primary"].wait_line("up\n")
    assert inst["patroni-replica"].wait_line("up drain") == \
        "up drain #patroni /replica: 503\n"
    files = [os.path.join(CONSUL_DIR, n) for n in ("happac-http.json", "happac-script.json")]
    for path in files:
        got = _run_file_checks(path, inst)
        assert got["patroni-primary"][0] == "passing", (path, got)
        assert got["patroni-replica"][0] == "critical", (path, got)
        assert "up drain" in got["patroni-replica"][1], (path, got)

    def ctl(*args):
        r = subprocess.run([ops_procs.happac_bin(), "ctl", "--socket", sock] + list(args),
                           capture_output=True, text=True, timeout=10, env=clean_env())
        assert r.returncode == 0, r.stdout + r.stderr

    ctl("maint")
    inst["patroni-primary"].wait_line("up maint")
    for path in files:
        got = _run_file_checks(path, inst)
        assert got["patroni-primary"] == ("critical", got["patroni-primary"][1]), (path, got)
        assert "up maint" in got["patroni-primary"][1], (path, got)
    ctl("ready")
    inst["patroni-primary"].wait_line("up ready")
    for path in files:
        got = _run_file_checks(path, inst)
        assert got["patroni-primary"][0] == "passing", (path, got)
