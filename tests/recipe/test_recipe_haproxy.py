"""`happac recipe haproxy`: every variant passes the real `haproxy -c`, carries
happac's timing, keeps the shape of haproxy/scenario-*.cfg, and routes as
documented in a live HAProxy in front of fake nodes."""

import os
import re
import shlex
import subprocess
import time

import pytest

from harness import require_tool
from recipe_util import REPO, recipe, run
import recipe_fakes as fakes
import agentcheck

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


def empty_state_file(tmp_path):
    """A server-state file as HAProxy writes it with no server in it: the format
    version alone (a missing or empty file is a warning)."""
    path = tmp_path / "server-state"
    path.write_text("1\n")
    return path


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
    state = empty_state_file(tmp_path)
    if replicas:
        args.append("--replicas")
    if full:
        args += ["--full", "--stats-socket", str(tmp_path / "admin.sock"),
                 "--server-state-file", str(state)]
    text = recipe(*args)
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    if full:
        assert_valid(haproxy_check(haproxy_bin, cfg), text)
    else:
        # Sections for an existing configuration: its global section must name the
        # state file (the header says so), and HAProxy says when it does not.
        p = haproxy_check(haproxy_bin, cfg)
        assert p.returncode == 0 and "'server-state-file' is not set" in p.stdout + p.stderr
        glob = tmp_path / "global.cfg"
        glob.write_text('global\n    server-state-file "%s"\n' % state)
        assert_valid(haproxy_check(haproxy_bin, glob, cfg), text)
    backends = [n for k, n, _ in sections(text) if k in ("listen", "backend")]
    for kind, name, lines in sections(text):
        if kind in ("listen", "backend"):
            assert "load-server-state-from-file global" in lines, name
            i = lines.index(".if version_atleast(3.1)")
            assert lines[i:i + 3] == [".if version_atleast(3.1)",
                                      "default-server init-state fully-down", ".endif"], lines
    assert backends
    # A DNS name is resolved when HAProxy starts, not taken from the state file.
    assert ("init-addr libc" in text) == (nodes == "mixed")

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
                  "--name", "pg", "--full", "--stats-socket", "${HAPPAC_RUN_DIR-/run/haproxy}/a.sock",
                  "--server-state-file", str(empty_state_file(tmp_path)))
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
    assert 'server-state-file "%s"' % (tmp_path / "server-state") in text
    # ... and the systemd lines of the header use the same file and socket.
    assert "ExecStartPre=-/bin/sed -i '/^#/!s/[^ ][^ ]*/0/6' %s\n" % (tmp_path / "server-state") in text
    # "$$": systemd's "$", so that the shell expands ${VAR-default} as HAProxy does
    assert 'UNIX-CONNECT:"$${HAPPAC_RUN_DIR-/run/haproxy}/a.sock" > %s.tmp' % (tmp_path / "server-state") in text


@pytest.mark.parametrize("scenario", ["a", "b", "c"])
def test_timing_matches_happac(scenario):
    """happac: a round every 1s, 800ms deadline. HAProxy: ask every 1s, two
    failed regular checks to go DOWN, 2s check timeout, sessions cut when a
    server goes DOWN. One passing Patroni check brings a server back; the TCP
    check of an agent backend needs two, so that a server starting DOWN hears
    its agent before it can come UP."""
    text = recipe("haproxy", "--scenario", scenario, "--replicas", *node_args(NODE_SETS["ipv4"]))
    backends = [(k, n, lines) for k, n, lines in sections(text) if k in ("listen", "backend")]
    assert backends
    for kind, name, lines in backends:
        # the one unconditional default-server line (init-state comes under an .if)
        ds = [l for l in lines if l.startswith("default-server ") and "init-state" not in l]
        assert len(ds) == 1, (name, lines)
        words = ds[0].split()
        kv = dict(zip(words[1::1], words[2::1]))
        agent = "agent-check" in words
        assert kv["inter"] == "1s" and kv["fall"] == "2" and kv["rise"] == ("2" if agent else "1"), ds
        assert kv["on-marked-down"] == "shutdown-sessions", ds
        assert "timeout check 2s" in lines, (name, lines)
        assert "timeout connect 1s" in lines and "timeout server 30m" in lines
        servers = [l for l in lines if l.startswith("server ")]
        if "option httpchk OPTIONS /primary" in lines or "option httpchk OPTIONS /replica" in lines:
            assert "http-check expect status 200" in lines
            assert all(s.endswith("check port 8008") for s in servers), servers
            assert "agent-check" not in words
        else:
            assert "agent-check" in words and kv["agent-inter"] == "250ms", ds
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
            args += ["--full", "--stats-socket", str(tmp_path / "admin.sock"),
                     "--server-state-file", str(empty_state_file(tmp_path))]
        f = tmp_path / ("scenario-%s.cfg" % s)
        f.write_text(recipe(*args))
        files.append(f)
    env_dir = tmp_path / "run"
    env_dir.mkdir()
    empty_state_file(env_dir)  # global.cfg: ${HAPPAC_RUN_DIR}/server-state
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
    assert os.path.exists(path), "%s is missing from the repository" % path
    with open(path) as f:
        hand = f.read()
    gen = recipe("haproxy", "--scenario", scenario, "--bind", "127.0.0.1:%d" % port,
                 "--node", "node1=127.0.0.11", "--node", "node2=127.0.0.12",
                 "--node", "node3=127.0.0.13")
    assert _shape(gen) == _shape(hand)


@pytest.mark.parametrize("extra", [
    [],
    ["--replicas", "--full", "--stats-socket", "/run/haproxy/admin.sock"],
    ["--full", "--server-state-file", "/srv/haproxy/state"],
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


@pytest.mark.parametrize("port", [None, "8500"])
def test_via_happac_checks_happacs_side_port(haproxy_bin, tmp_path, port):
    """--via-happac: Scenario A's checks, paths and timing, sent to happac's
    --http-listen port instead of Patroni's 8008 (#17)."""
    extra = ["--http-port", port] if port else []
    want = port or "8405"
    text = recipe("haproxy", "--scenario", "a", "--via-happac", "--replicas", "--full",
                  "--server-state-file", str(empty_state_file(tmp_path)),
                  *node_args(NODE_SETS["ipv4"]), *extra)
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    assert_valid(haproxy_check(haproxy_bin, cfg), text)
    servers = [l for _, _, lines in sections(text) for l in lines if l.startswith("server ")]
    assert len(servers) == 6 and all(l.endswith("check port %s" % want) for l in servers)
    assert "--http-listen NODE_ADDR:%s --allow" % want in text
    checks = [l for _, _, lines in sections(text) for l in lines if "httpchk" in l]
    assert checks == ["option httpchk OPTIONS /primary", "option httpchk OPTIONS /replica"]
    # the same paths as plain Scenario A, which checks Patroni itself
    plain = recipe("haproxy", "--scenario", "a", "--replicas", *node_args(NODE_SETS["ipv4"]))
    assert all(l.endswith("check port 8008") for _, _, ls in sections(plain) for l in ls
               if l.startswith("server "))
    assert [l for _, _, ls in sections(plain) for l in ls if "httpchk" in l] == checks
    lines = text.splitlines()
    cmd = shlex.split(lines[lines.index("# Print it again (or for other nodes and ports) with:")
                            + 1].lstrip("#").strip())
    assert recipe(*cmd[2:]) == text


@pytest.mark.parametrize("args, message", [
    (["--scenario", "b", "--via-happac"], "--via-happac is for --scenario a"),
    (["--scenario", "a", "--via-happac", "--http-port", "6432"],
     "--pgbouncer-port and --http-port are both 6432"),
    (["--scenario", "a", "--http-port", "0"], "--http-port"),
])
def test_via_happac_bad_input(args, message):
    p = run(["recipe", "haproxy", "--node", "n1=10.0.0.1"] + args)
    assert p.returncode == 2 and p.stdout == "" and message in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_systemd_lines_are_valid_for_systemd(tmp_path):
    """The header's drop-in, added to Debian's haproxy.service, passes systemd-analyze
    verify without a word (an escape systemd does not know would show here)."""
    analyze = require_tool("systemd-analyze", "systemd")
    debian_unit = "/lib/systemd/system/haproxy.service"
    text = recipe("haproxy", "--scenario", "c", "--node", "a=10.0.0.1", "--full",
                  "--server-state-file", "/srv/haproxy/state",
                  "--stats-socket", "${RUN-/run/haproxy}/admin.sock")
    dropin = [l[4:] for l in text.splitlines()
              if l.startswith("#   [Service]") or re.match(r"#   Exec[A-Za-z]+=", l)]
    assert dropin[0] == "[Service]" and len(dropin) == 7, dropin
    assert [l.split("=", 1)[0] for l in dropin[1:]] == [
        "ExecStartPre", "ExecReload", "ExecReload", "ExecReload", "ExecReload", "ExecStop"]
    # Debian's own reload lines, in their order, around the save.
    with open(debian_unit) as f:
        debian = f.read()
    for line in dropin[3:6:2]:
        assert line in debian, line
    unit = tmp_path / "haproxy.service"
    unit.write_text(debian + "\n" + "\n".join(dropin) + "\n")
    p = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and p.stderr.strip() == "", p.stderr


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
        self.state = empty_state_file(tmp_path)
        args += ["--server-state-file", str(self.state)]
        self.cfg = tmp_path / "haproxy.cfg"
        self.cfg.write_text(recipe(*args))
        self.sock = tmp_path / "admin.sock"
        self.log = open(tmp_path / "haproxy.log", "w")
        self.proc = None

    def start(self, haproxy_bin):
        for n in self.nodes:
            n.start()
        self.start_haproxy(haproxy_bin)

    def start_haproxy(self, haproxy_bin):
        self.haproxy_bin = haproxy_bin
        self.started = time.monotonic()
        self.proc = subprocess.Popen([haproxy_bin, "-db", "-f", str(self.cfg)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not self.sock.exists():
            assert self.proc.poll() is None, "haproxy exited: %s" % self.cfg.read_text()
            assert time.monotonic() < deadline, "haproxy did not create its stats socket"
            time.sleep(0.05)

    def stop_haproxy(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.sock.exists():  # else the next start would take it for its own
            self.sock.unlink()

    def stop(self):
        self.stop_haproxy()
        for n in self.nodes:
            n.stop()
        self.log.close()

    def hook(self, name):
        """Run the systemd line `name` of the recipe's header, as systemd would: it holds
        no '$', '%' or backslash, so systemd's unquoting is the shell's."""
        lines = [l[1:].strip() for l in self.cfg.read_text().splitlines()
                 if l.startswith("#   %s=" % name)]
        assert len(lines) == 1, "the header has %d %s= lines" % (len(lines), name)
        argv = shlex.split(lines[0].split("=", 1)[1].lstrip("-"))
        return subprocess.run(argv, capture_output=True, text=True, timeout=10)

    def saved_states(self):
        """{(backend, server): srv_op_state} from the state file."""
        out = {}
        for line in self.state.read_text().splitlines()[1:]:
            if line and not line.startswith("#"):
                f = line.split()
                out[(f[1], f[3])] = int(f[5])
        return out

    def show_stat(self):
        data = agentcheck.talk(str(self.sock), b"show stat\n", timeout=2)[0]
        lines = data.decode().splitlines()
        fields = lines[0][2:].split(",")
        rows = [dict(zip(fields, l.split(","))) for l in lines[1:] if l]
        return {(r["pxname"], r["svname"]): r["status"] for r in rows if r["svname"].startswith("node")}

    def watch(self, seconds):
        """show stat as fast as it answers, from the start for `seconds`: [(t, states)]."""
        samples = []
        while time.monotonic() < self.started + seconds:
            try:
                samples.append((time.monotonic() - self.started, self.show_stat()))
            except OSError:
                continue
        assert samples, "no show stat answer in %ss" % seconds
        return samples

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


# A start with every server DOWN lasts until the primary's second TCP check (rise 2),
# the first within one interval: watch that long, and a second more.
START_WATCH = 3.0


def test_live_restart_starts_every_server_down(lab, haproxy_bin):
    """The header's systemd lines, run as systemd would: ExecStop saves the states
    (real socat), ExecStartPre marks every server DOWN, and the new HAProxy starts
    every server DOWN: no replica is ever UP, the primary comes UP by its checks.
    Without them HAProxy starts every server UP until its first check."""
    lb = lab("b")
    lb.write("node1/pgbouncer")
    lb.read("node2/pgbouncer", "node3/pgbouncer")
    assert lb.hook("ExecStop").returncode == 0
    saved = lb.saved_states()
    assert saved[("scenario_b_write", "node1")] == 2  # SRV_ST_RUNNING
    assert saved[("scenario_b_write", "node2")] == 0 and saved[("scenario_b_write", "node3")] == 0
    assert saved[("scenario_b_replica", "node2")] == 2
    lb.stop_haproxy()
    assert lb.hook("ExecStartPre").returncode == 0
    assert set(lb.saved_states().values()) == {0}, lb.state.read_text()

    lb.start_haproxy(haproxy_bin)
    samples = lb.watch(START_WATCH)
    first = samples[0][1]
    assert set(first.values()) <= {"DOWN", "DOWN 1/2"}, first
    replica_up = [(t, st) for t, st in samples
                  if any(v.startswith("UP") for (be, n), v in st.items()
                         if be == "scenario_b_write" and n != "node1")]
    assert not replica_up, "a replica was UP for writes after the start: %s" % (replica_up[0],)
    up = [t for t, st in samples if st[("scenario_b_write", "node1")] == "UP"]
    assert up, "the primary did not come UP within %ss: %s" % (START_WATCH, samples[-1])
    lb.write("node1/pgbouncer")


def test_live_reload_keeps_the_states(lab, haproxy_bin):
    """A reload: the states saved a moment before are loaded as they are, so the
    primary is UP from the new process's first moment and no replica ever is."""
    lb = lab("b")
    lb.write("node1/pgbouncer")
    assert lb.hook("ExecStop").returncode == 0  # the ExecReload line is the same command
    lb.stop_haproxy()
    lb.start_haproxy(haproxy_bin)
    samples = lb.watch(START_WATCH)
    for t, st in samples:
        assert st[("scenario_b_write", "node1")] == "UP", (t, st)
        assert not st[("scenario_b_write", "node2")].startswith("UP"), (t, st)
        assert not st[("scenario_b_write", "node3")].startswith("UP"), (t, st)


def test_live_failed_save_marks_every_server_down(lab):
    """A save that fails (no HAProxy on the socket) leaves no old states to load:
    every server in the file is marked DOWN."""
    lb = lab("b")
    lb.write("node1/pgbouncer")
    assert lb.hook("ExecStop").returncode == 0
    assert 2 in lb.saved_states().values()
    lb.stop_haproxy()
    p = lb.hook("ExecStop")
    assert "socat" in p.stderr, p.stderr  # it did fail, and said so
    states = lb.saved_states()
    assert states and set(states.values()) == {0}, lb.state.read_text()


@pytest.mark.parametrize("args,message", [
    (["--server-state-file", "/var/lib/haproxy/s"],
     "--server-state-file needs --full (server-state-file belongs to the global section)"),
    (["--full", "--server-state-file", "state"],
     "--server-state-file: invalid path 'state' (absolute; no quotes, backslashes, '$', spaces or control characters)"),
    (["--full", "--server-state-file", "/run/${X}/state"],
     "--server-state-file: invalid path '/run/${X}/state' (absolute; no quotes, backslashes, '$', spaces or control characters)"),
    (["--full", "--server-state-file", "/run/a b"],
     "--server-state-file: invalid path '/run/a b' (absolute; no quotes, backslashes, '$', spaces or control characters)"),
])
def test_bad_server_state_file(args, message):
    p = run(["recipe", "haproxy", "--scenario", "b", "--node", "n1=10.0.0.1"] + args)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr == "happac recipe haproxy: %s\n" % message


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
