"""`happac recipe` as a command: help on stdout with exit 0, and every bad
input one line on stderr naming the bad thing, nothing on stdout, exit 2."""

import pytest

from recipe_util import clean_env, run

N = ["--node", "n1=10.0.0.1"]


@pytest.mark.parametrize("args", [
    ["recipe", "--help"], ["recipe", "haproxy", "--help"], ["recipe", "consul", "--help"],
    ["recipe", "systemd", "--help"], ["recipe", "k8s", "--help"],
])
def test_help(args):
    p = run(args)
    assert p.returncode == 0 and p.stderr == ""
    assert p.stdout.startswith("Usage: happac recipe")


@pytest.mark.parametrize("args,needle", [
    ([], "which recipe?"),
    (["nginx"], "unknown recipe 'nginx'"),
    (["haproxy"] + N, "--scenario is required"),
    (["haproxy", "--scenario", "d"] + N, "--scenario: 'd' is not a, b or c"),
    (["haproxy", "--scenario", "b"], "at least one --node NAME=ADDR is required"),
    (["haproxy", "--scenario", "b", "--node", "n1"], "--node: 'n1' is not NAME=ADDR"),
    (["haproxy", "--scenario", "b", "--node", "n1=10.0.0.1:6432"], "no port here"),
    (["haproxy", "--scenario", "b", "--node", "n 1=10.0.0.1"], "invalid name 'n 1'"),
    (["haproxy", "--scenario", "b", "--node", "n1=300.0.0.1"], "invalid address '300.0.0.1'"),
    (["haproxy", "--scenario", "b"] + N + ["--agent-port", "0"], "--agent-port: invalid port '0'"),
    (["haproxy", "--scenario", "b"] + N + ["--agent-port", "70000"],
     "--agent-port: invalid port '70000'"),
    (["haproxy", "--scenario", "c"] + N + ["--postgres-port", "65536"],
     "--postgres-port: invalid port '65536'"),
    (["haproxy", "--scenario", "a"] + N + ["--patroni-port", "x"], "--patroni-port: invalid port 'x'"),
    (["haproxy", "--scenario", "b"] + N + ["--bind", "::1:5000"], "--bind: '::1:5000' is not ADDR:PORT"),
    (["haproxy", "--scenario", "b"] + N + ["--stats-socket", "/run/a.sock"],
     "--stats-socket needs --full"),
    (["haproxy", "--scenario", "b"] + N + ["--agent-port", "6432"],
     "--pgbouncer-port and --agent-port are both 6432"),
    (["haproxy", "--scenario", "b"] + N + ["--frobnicate"], "unknown option '--frobnicate'"),
    (["haproxy", "--scenario", "b"] + N + ["--node"], "option '--node' needs a value"),
    (["consul"], "--service is required"),
    (["consul", "--service", "primary", "--http", "localhost:8405"],
     "--http: 'localhost:8405' is not ADDR:PORT"),
    (["consul", "--service", "primary", "--name", "my_db"], "--name: invalid service name 'my_db'"),
    (["systemd", "-h", "127.0.0.1"], "-r/--pg-is-ready-port is required"),
    (["k8s"], "--profile is required"),
    (["k8s", "--profile", "master"], "--profile: 'master' is not one of Patroni's rules"),
    (["k8s", "--profile", "liveness"], "--profile: 'liveness' is not one of Patroni's rules"),
    (["k8s", "--profile", "primary", "--http-port", "0"], "--http-port: invalid port '0'"),
    (["k8s", "--profile", "primary", "--port", "1"], "unknown option '--port'"),
    (["k8s", "--profile", "primary", "extra"], "unexpected argument 'extra'"),
])
def test_bad_input(args, needle):
    p = run(["recipe"] + args, env=clean_env())
    assert p.returncode == 2, p
    assert p.stdout == ""
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("happac recipe"), lines[0]
    assert needle in lines[0], lines[0]
