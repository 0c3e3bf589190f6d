"""`happac recipe haproxy`: every variant passes the real `haproxy -c`, carries
happac's timing, keeps the shape of haproxy/scenario-*.cfg, and routes as
documented in a live HAProxy in front of fake nodes."""

import os
import re
import shlex
import subprocess
import time

import pytest

from recipe_util import REPO, recipe, run
import recipe_fakes as fakes

NODE_SETS = {
    "ipv4": ["node1=10.0.0.11", "node2=10.0.0.12", "node3=10.0.0.13"],
    "ipv6": ["node1=fd00::11", "node2=[fd00::12]", "node3=::1"],
    "mixed": ["node1=10.0.0.11", "node2=[fd00::12]", "node3=localhost"],
}


def node_args(nodes):
    out = []
    for n in nodes:
        out += ["--node", n]
    return out


def haproxy_check(haproxy_bin, *files):
    args = [haproxy_bin, "-c"]
    for f in files:
        args += ["-f", str(f)]
    return subprocess.run(args, capture_output=True, text=True, timeout=30)


def assert_valid(p, cfg_text=""):
    out = p.stdout + p.stderr
    assert p.returncode == 0, "haproxy -c failed:\n%s\n--- config ---\n%s" % (out, cfg_text)
    assert "Configuration file is valid" in out
    # A warning is a config that works by luck: none allowed.
    assert "[WARNING]" not in out and "[ALERT]" not in out, out


def sections(text):
    """[(kind, name, [lines])] of an HAProxy config, comments stripped."""
    result = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        words = line.split()
        if not raw[0].isspace() and words[0] in ("global", "defaults", "listen", "frontend",
                                                  "backend"):
            result.append((words[0], words[1] if len(words) > 1 else "", []))
        else:
            assert result, "line outside a section: %r" % raw
            result[-1][2].append(" ".join(words))
    return result


@pytest.mark.parametrize("full", [False, True], ids=["sections", "full"])
@pytest.mark.parametrize("nodes", sorted(NODE_SETS))
@pytest.mark.parametrize("replicas", [False, True], ids=["", "replicas"])
@pytest.mark.parametrize("scenario", ["a", "b", "c"])
def test_haproxy_c_accepts_every_variant(haproxy_bin, tmp_path, scenario, replicas, nodes, full):
    args = ["haproxy", "--scenario", scenario] + node_args(NODE_SETS[nodes])
    if replicas:
        args.append("--replicas")
    if full:
        args += ["--full", "--stats-socket", str(tmp_path / "admin.sock")]
    text = recipe(*args)
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    assert_valid(haproxy_check(haproxy_bin, cfg), text)

    servers = [l for _, _, lines in sections(text) for l in lines if l.startswith("server ")]
    per_backend = 3
    backends = {"a": 1, "b": 1, "c": 2}[scenario] + (1 if replicas else 0)
    assert len(servers) == per_backend * backends
    for line in servers:
        addr = line.split()[2]
        # IPv6 only in brackets: "fd00::12:6432" parses by luck of the last colon.
        if ":" in addr.rsplit(":", 1)[0]:
            assert re.fullmatch(r"\[[0-9a-f:]+\]:\d+", addr), line
    if nodes == "ipv6":
        assert any("[fd00::12]:6432" in s for s in servers)
        assert any("[::1]:" in s for s in servers)
    assert ("\nglobal\n" in text) == full


def test_every_option_reaches_the_config(haproxy_bin, tmp_path):
    text = recipe("haproxy", "--scenario", "c", "--node", "db1=10.1.0.1", "--node", "db2=10.1.0.2",
                  "--agent-port", "7555", "--replica-agent-port", "7556",
                  "--pgbouncer-port", "7432", "--postgres-port", "7433", "--patroni-port", "7008",
                  "--bind", "127.0.0.1:7000", "--replicas", "--replica-bind", "[::1]:7100",
                  "--name", "pg", "--full", "--stats-socket", "${HAPPAC_RUN_DIR-/run/haproxy}/a.sock")
    cfg = tmp_path / "h.cfg"
    cfg.write_text(text)
    assert_valid(haproxy_check(haproxy_bin, cfg), text)
    names = [(k, n) for k, n, _ in sections(text)]
    assert names == [("global", ""), ("defaults", ""), ("frontend", "pg_write"),
                     ("backend", "pg_pgbouncer"), ("backend", "pg_direct"),
                     ("frontend", "pg_read"), ("backend", "pg_replica")]
    assert "bind 127.0.0.1:7000\n" in text and "bind [::1]:7100\n" in text
    assert "server db1 10.1.0.1:7432 check\n" in text
    assert "server db1 10.1.0.1:7433 check port 7008\n" in text
    assert "agent-port 7555 " in text and "agent-port 7556 " in text
    assert 'stats socket "${HAPPAC_RUN_DIR-/run/haproxy}/a.sock"' in text


@pytest.mark.parametrize("scenario", ["a", "b", "c"])
def test_timing_matches_happac(scenario):
    """happac: a round every 1s, 800ms deadline. HAProxy: ask every 1s, two
    failed regular checks to go DOWN, one to come back, 2s check timeout,
    sessions cut when a server goes DOWN."""
    text = recipe("haproxy", "--scenario", scenario, "--replicas", *node_args(NODE_SETS["ipv4"]))
    backends = [(k, n, lines) for k, n, lines in sections(text) if k in ("listen", "backend")]
    assert backends
    for kind, name, lines in backends:
        ds = [l for l in lines if l.startswith("default-server ")]
        assert len(ds) == 1, (name, lines)
        words = ds[0].split()
        kv = dict(zip(words[1::1], words[2::1]))
        assert kv["inter"] == "1s" and kv["fall"] == "2" and kv["rise"] == "1", ds
        assert kv["on-marked-down"] == "shutdown-sessions", ds
        assert "timeout check 2s" in lines, (name, lines)
        assert "timeout connect 1s" in lines and "timeout server 30m" in lines
        servers = [l for l in lines if l.startswith("server ")]
        if "option httpchk OPTIONS /primary" in lines or "option httpchk OPTIONS /replica" in lines:
            assert "http-check expect status 200" in lines
            assert all(s.endswith("check port 8008") for s in servers), servers
            assert "agent-check" not in words
        else:
            assert "agent-check" in words and kv["agent-inter"] == "1s", ds
            expected = "5556" if name.endswith("_replica") else "5555"
            assert kv["agent-port"] == expected, ds
            assert all(s.endswith(":6432 check") for s in servers), servers
    for kind, name, lines in sections(text):
        if kind in ("listen", "frontend"):
            assert "timeout client 30m" in lines and "mode tcp" in lines


def test_scenarios_load_together(haproxy_bin, tmp_path):
    """The three scenarios (and their read sides) in one HAProxy, as the
    cluster harness runs them: distinct names, no clashes."""
    files = []
    global_cfg = os.path.join(REPO, "haproxy", "global.cfg")
    if os.path.exists(global_cfg):
        files.append(global_cfg)
    for i, s in enumerate("abc"):
        args = ["haproxy", "--scenario", s, "--bind", "127.0.0.1:%d" % (5000 + i), "--replicas",
                "--replica-bind", "127.0.0.1:%d" % (5010 + i)] + node_args(NODE_SETS["mixed"])
        if not files and s == "a":
            args += ["--full", "--stats-socket", str(tmp_path / "admin.sock")]
        f = tmp_path / ("scenario-%s.cfg" % s)
        f.write_text(recipe(*args))
        files.append(f)
    env_dir = tmp_path / "run"
    env_dir.mkdir()
    p = subprocess.run(["haproxy", "-c"] + sum((["-f", str(f)] for f in files), []),
                       capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, HAPPAC_RUN_DIR=str(env_dir)))
    assert_valid(p)


def _shape(text):
    """What routing depends on: proxies, bind, routing rules, checks, servers;
    without the timeouts, balance and rise (see test_shape_matches_hand_written)."""
    keep = ("bind", "mode", "acl", "use_backend", "default_backend", "option httpchk",
            "http-check", "server")
    out = []
    for kind, name, lines in sections(text):
        if kind not in ("listen", "frontend", "backend"):
            continue
        body = sorted(l for l in lines if l.startswith(keep))
        ds = [l for l in lines if l.startswith("default-server")]
        if ds:
            words = ds[0].split()
            i = words.index("rise")
            body.append(" ".join(words[:i] + words[i + 2:]))
        out.append((kind, name, body))
    return out


@pytest.mark.parametrize("scenario,port", [("a", 5000), ("b", 5001), ("c", 5002)])
def test_shape_matches_hand_written(scenario, port):
    """Generated with the lab's nodes and ports, a recipe routes exactly like
    haproxy/scenario-X.cfg, so the cluster harness can run on generated
    configurations. The one intended difference is rise 1 (theirs: 2)."""
    path = os.path.join(REPO, "haproxy", "scenario-%s.cfg" % scenario)
    if not os.path.exists(path):
        pytest.skip("%s is not there" % path)
    with open(path) as f:
        hand = f.read()
    gen = recipe("haproxy", "--scenario", scenario, "--bind", "127.0.0.1:%d" % port,
                 "--node", "node1=127.0.0.11", "--node", "node2=127.0.0.12",
                 "--node", "node3=127.0.0.13")
    assert _shape(gen) == _shape(hand)


@pytest.mark.parametrize("extra", [
    [],
    ["--replicas", "--full", "--stats-socket", "/run/haproxy/admin.sock"],
    ["--bind", "[::]:6000", "--replicas", "--replica-bind", "*:6100", "--agent-port", "6555",
     "--name", "pg"],
])
def test_comment_repeats_the_command(extra):
    """The header's command prints the same recipe again (shell quoting included)."""
    text = recipe("haproxy", "--scenario", "c", "--node", "a=10.0.0.1", "--node", "b=fd00::2",
                  *extra)
    lines = text.splitlines()
    i = lines.index("# Print it again (or for other nodes and ports) with:")
    cmd = shlex.split(lines[i + 1].lstrip("#").strip())
    assert cmd[:3] == ["happac", "recipe", "haproxy"]
    assert recipe(*cmd[2:]) == text


# ---- live: a real HAProxy in front of fake nodes

ADDRS = ["127.0.0.41", "127.0.0.42", "127.0.0.43"]


class Lab:
    def __init__(self, haproxy_bin, tmp_path, scenario, addrs, replicas=True):
        ports = fakes.pick_ports(addrs, 5)
        self.ports = dict(zip(["pgbouncer", "postgres", "patroni", "agent", "replica_agent"],
                              ports))
        front = "::1" if ":" in addrs[0] else "127.0.0.1"
        self.front = front
        self.write_port, self.read_port = fakes.pick_ports([front], 2)
        self.nodes = [fakes.FakeNode("node%d" % (i + 1), a, self.ports,
                                     "primary" if i == 0 else "replica")
                      for i, a in enumerate(addrs)]
        hp = "[%s]" % front if ":" in front else front
        args = ["haproxy", "--scenario", scenario, "--full",
                "--stats-socket", str(tmp_path / "admin.sock"),
                "--bind", "%s:%d" % (hp, self.write_port),
                "--agent-port", str(self.ports["agent"]),
                "--pgbouncer-port", str(self.ports["pgbouncer"]),
                "--postgres-port", str(self.ports["postgres"]),
                "--patroni-port", str(self.ports["patroni"])]
        if replicas:
            args += ["--replicas", "--replica-bind", "%s:%d" % (hp, self.read_port),
                     "--replica-agent-port", str(self.ports["replica_agent"])]
        for n in self.nodes:
            args += ["--node", "%s=%s" % (n.name, n.addr)]
        self.cfg = tmp_path / "haproxy.cfg"
        self.cfg.write_text(recipe(*args))
        self.sock = tmp_path / "admin.sock"
        self.log = open(tmp_path / "haproxy.log", "w")
        self.proc = None

    def start(self, haproxy_bin):
        for n in self.nodes:
            n.start()
        self.proc = subprocess.Popen([haproxy_bin, "-db", "-f", str(self.cfg)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not self.sock.exists():
            assert self.proc.poll() is None, "haproxy exited: %s" % self.cfg.read_text()
            assert time.monotonic() < deadline, "haproxy did not create its stats socket"
            time.sleep(0.05)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for n in self.nodes:
            n.stop()
        self.log.close()

    def write(self, *expected):
        return fakes.wait_route(self.front, self.write_port, set(expected))

    def read(self, *expected):
        return fakes.wait_route(self.front, self.read_port, set(expected))

    def set_primary(self, index):
        for i, n in enumerate(self.nodes):
            n.role = "primary" if i == index else "replica"


@pytest.fixture
def lab(haproxy_bin, tmp_path, request):
    labs = []

    def make(scenario, addrs=ADDRS, replicas=True):
        if not fakes.ports_free(addrs, [0]):
            pytest.skip("cannot bind the test addresses %s" % addrs)
        lb = Lab(haproxy_bin, tmp_path, scenario, addrs, replicas)
        labs.append(lb)
        lb.start(haproxy_bin)
        return lb

    yield make
    for lb in labs:
        lb.stop()


def test_live_scenario_a(lab):
    lb = lab("a")
    lb.write("node1/pgbouncer")
    lb.read("node2/pgbouncer", "node3/pgbouncer")
    lb.set_primary(2)  # Patroni fails over to node3
    lb.write("node3/pgbouncer")
    lb.read("node1/pgbouncer", "node2/pgbouncer")


def test_live_scenario_b(lab):
    lb = lab("b")
    lb.write("node1/pgbouncer")
    lb.read("node2/pgbouncer", "node3/pgbouncer")
    # The primary's PgBouncer dies: its agent says down, nothing else qualifies.
    lb.nodes[0].set_pgbouncer(False)
    assert fakes.wait_route(lb.front, lb.write_port, {""})
    # Fail-over to node2: writes follow the agent.
    lb.nodes[0].set_pgbouncer(True)
    lb.set_primary(1)
    lb.write("node2/pgbouncer")
    # No replica fit (node1 and node3 lose PgBouncer): reads go to the primary.
    lb.nodes[0].set_pgbouncer(False)
    lb.nodes[2].set_pgbouncer(False)
    lb.read("node2/pgbouncer")


def test_live_scenario_c(lab):
    lb = lab("c")
    lb.write("node1/pgbouncer")
    lb.read("node2/pgbouncer", "node3/pgbouncer")
    # The primary's PgBouncer dies: no PgBouncer is usable for writes, which
    # go straight to PostgreSQL on the primary (Patroni's check).
    lb.nodes[0].set_pgbouncer(False)
    lb.write("node1/postgres")
    lb.read("node2/pgbouncer", "node3/pgbouncer")
    # Every PgBouncer down: reads take the writes' route, PostgreSQL direct.
    lb.nodes[1].set_pgbouncer(False)
    lb.nodes[2].set_pgbouncer(False)
    lb.read("node1/postgres")
    # PgBouncer back on the primary: writes return to it.
    lb.nodes[0].set_pgbouncer(True)
    lb.write("node1/pgbouncer")


def test_live_ipv6(lab):
    lb = lab("b", addrs=["::1"], replicas=False)
    assert "server node1 [::1]:" in lb.cfg.read_text()
    lb.write("node1/pgbouncer")


def test_bad_input_prints_nothing(tmp_path):
    p = run(["recipe", "haproxy", "--scenario", "b", "--node", "n1=10.0.0.1",
             "--pgbouncer-port", "70000"])
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr == ("happac recipe haproxy: --pgbouncer-port: invalid port '70000' "
                        "(expected 1-65535)\n")


def test_agent_inter_matches_happacs_hold():
    """happac holds a new primary for interval + timeout + its
    --haproxy-agent-inter, so that HAProxy has marked the old primary DOWN
    before the new one can be UP. Its default must be the agent-inter the
    recipes write (the recipes have no option to change it)."""
    text = recipe("haproxy", "--scenario", "c", "--replicas", *node_args(NODE_SETS["ipv4"]))
    inters = set(re.findall(r"agent-inter (\S+)", text))
    p = run(["-h", "127.0.0.1", "-r", "6432", "-t"])
    assert p.returncode == 0, p.stderr
    default = re.search(r"^haproxy-agent-inter = (\S+)$", p.stdout, re.M)
    assert default, p.stdout

    def ms(d):
        m = re.fullmatch(r"(\d+)(ms|s|m)?", d)
        assert m, d
        return int(m.group(1)) * {"ms": 1, None: 1, "s": 1000, "m": 60000}[m.group(2)]

    assert {ms(i) for i in inters} == {ms(default.group(1))}, (inters, default.group(1))
