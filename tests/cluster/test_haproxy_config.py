"""haproxy/*.cfg: valid for HAProxy, and the three scenarios say what issue 3 asks.

These files are what the README quotes and what the cluster tests run, unchanged.
"""

import ipaddress
import os
import re

import happac_cluster as hc


def cfg(name):
    return (hc.HAPROXY_DIR / name).read_text()


def section(text, kind, name):
    """The lines of `kind name` up to the next section, comments removed."""
    m = re.search(rf"^{kind} {name}\n(.*?)(?=^\S|\Z)", text, re.M | re.S)
    assert m, f"no section '{kind} {name}'"
    return [l.split("#", 1)[0].strip() for l in m.group(1).splitlines() if l.split("#", 1)[0].strip()]


def test_haproxy_accepts_the_configuration(tmp_path):
    """The stack's own HAProxy (2.6 on debian12, 3.0 on debian13)."""
    (tmp_path / "server-state").write_text("1\n")  # as saved by a HAProxy without servers
    argv = ["haproxy", "-c"]
    for f in hc.HAPROXY_FILES:
        argv += ["-f", str(hc.HAPROXY_DIR / f)]
    r = hc.Stack().run(argv, shared=[str(hc.HAPROXY_DIR), str(tmp_path)],
                       env={**os.environ, "HAPPAC_RUN_DIR": str(tmp_path)},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ALERT" not in r.stdout + r.stderr and "WARNING" not in r.stdout + r.stderr, r.stdout + r.stderr


def test_everything_stays_on_loopback():
    for f in hc.HAPROXY_FILES:
        for line in cfg(f).splitlines():
            words = line.split("#", 1)[0].split()
            if words[:1] in (["bind"], ["server"]):
                addr = words[1] if words[0] == "bind" else words[2]
                ip = addr.rsplit(":", 1)[0]
                assert ipaddress.ip_address(ip) in ipaddress.ip_network("127.0.0.0/8"), line


def test_stats_socket_is_admin_and_world_writable():
    g = cfg("global.cfg")
    assert re.search(r'^\s*stats socket "\$\{HAPPAC_RUN_DIR-[^}]*\}/admin.sock" mode 666 level admin', g, re.M)


def servers(lines):
    return [l for l in lines if l.startswith("server ")]


def test_scenario_a_patroni_httpchk():
    lines = section(cfg("scenario-a.cfg"), "listen", "scenario_a_write")
    assert f"bind 127.0.0.1:{hc.PORT_A}" in lines
    assert "option httpchk OPTIONS /primary" in lines
    assert "http-check expect status 200" in lines
    srv = servers(lines)
    assert len(srv) == 3
    for n, line in zip(hc.NODES, srv):
        assert line == f"server node{n} {hc.node_addr(n)}:{hc.PGBOUNCER_PORT} check port {hc.PATRONI_PORT}"


def test_scenario_b_agent_check():
    lines = section(cfg("scenario-b.cfg"), "listen", "scenario_b_write")
    assert f"bind 127.0.0.1:{hc.PORT_B}" in lines
    ds = [l for l in lines if l.startswith("default-server ") and "init-state" not in l]
    assert len(ds) == 1
    for want in (f"agent-check agent-port {hc.AGENT_PORT} agent-inter 250ms", "on-marked-down shutdown-sessions"):
        assert want in ds[0]
    for n, line in zip(hc.NODES, servers(lines)):
        assert line.startswith(f"server node{n} {hc.node_addr(n)}:{hc.PGBOUNCER_PORT} check")


def test_scenario_c_nbsrv_fallback():
    text = cfg("scenario-c.cfg")
    front = section(text, "frontend", "scenario_c_write")
    assert f"bind 127.0.0.1:{hc.PORT_C}" in front
    assert "acl pgbouncer_usable nbsrv(scenario_c_pgbouncer) gt 0" in front
    assert "use_backend scenario_c_pgbouncer if pgbouncer_usable" in front
    assert "default_backend scenario_c_direct" in front
    pgb = section(text, "backend", "scenario_c_pgbouncer")
    assert any(f"agent-check agent-port {hc.AGENT_PORT}" in l for l in pgb)
    for n, line in zip(hc.NODES, servers(pgb)):
        assert line.startswith(f"server node{n} {hc.node_addr(n)}:{hc.PGBOUNCER_PORT} check")
    direct = section(text, "backend", "scenario_c_direct")
    assert "option httpchk OPTIONS /primary" in direct
    assert "http-check expect status 200" in direct
    for n, line in zip(hc.NODES, servers(direct)):
        assert line == f"server node{n} {hc.node_addr(n)}:{hc.PG_PORT} check port {hc.PATRONI_PORT}"


def test_bounds_are_read_from_the_files():
    s = hc.haproxy_check_settings()
    assert s["scenario_b_write"]["agent_inter"] == 0.25
    assert s["scenario_c_pgbouncer"]["agent_inter"] == 0.25
    assert s["scenario_a_write"]["agent_inter"] is None
    # the recipe sets each backend's own timeout check (2s), over the defaults' 1s
    assert s["scenario_b_write"]["timeout_check"] == 2.0
    assert s["scenario_b_write"]["rise"] == 2 and s["scenario_b_write"]["fall"] == 2
    assert s["scenario_a_write"]["rise"] == 1 and s["scenario_c_direct"]["rise"] == 1


def test_server_states_survive_restarts():
    """Issue 11: every backend loads the state file global.cfg names, starts DOWN where
    HAProxy supports init-state, and the recipe's header gives the systemd lines the lab
    runs around a restart (cluster.Cluster.stop_haproxy / start_haproxy)."""
    assert re.search(r'^\s*server-state-file "\$\{HAPPAC_RUN_DIR-/run/haproxy\}/server-state"$',
                     cfg("global.cfg"), re.M)
    for x in hc.SCENARIOS:
        text = cfg(f"scenario-{x}.cfg")
        for kind, name in re.findall(r"^(listen|backend) (\S+)$", text, re.M):
            lines = section(text, kind, name)
            assert "load-server-state-from-file global" in lines, name
            assert ".if version_atleast(3.1)" in lines and "default-server init-state fully-down" in lines
    binary = os.environ.get("HAPPAC_BIN") or hc.REPO / "bin" / "happac"
    for hook in ("ExecStartPre", "ExecStop"):
        argv = hc.recipe_hook(binary, hook, "/lab/admin.sock", "/lab/server-state")
        assert argv and "/lab/server-state" in argv[-1], argv
        assert "/var/lib/haproxy" not in " ".join(argv), argv
