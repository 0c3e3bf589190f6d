"""Profiles, agent-send dispatch, wrong-role words and operator overrides,
against the real PgBouncer/PostgreSQL and the Patroni stand-in (which answers
GET with a Patroni 3.x-shaped status JSON whose role follows its mode).
The same behaviour against a real Patroni cluster is in tests/cluster."""

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import procs
from agent_client import check, equals, starts, wait_reply
from procs import ADDR, AGENT_PORT, poll_until

REPLICA_PORT = 5556
HTTP = "%s:8098" % ADDR


def bound():
    return 0.2 + 0.15 + 0.3


def role_bound():
    """A role that becomes right: detection plus the interval + timeout hold."""
    return bound() + 0.2 + 0.15


def ask(port, send=None, addr=ADDR):
    """One agent check that may name a profile first, as agent-send does."""
    s = socket.create_connection((addr, port), timeout=5)
    if send:
        s.sendall(send)
    data = b""
    while True:
        b = s.recv(256)
        if not b:
            break
        data += b
    s.close()
    return data.decode()


def conf(workdir, name, text):
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_one_patroni_request_answers_every_profile(happac, backends):
    standin = backends[1]
    h = happac("--profile", "replica:%d" % REPLICA_PORT, "--profile", "read-only")
    assert check(AGENT_PORT)[0] == "up\n"
    assert ask(REPLICA_PORT) == "down #patroni: not replica (primary, running)\n"
    # agent-send dispatch on the main port
    assert ask(AGENT_PORT, b"read-only\n") == "up\n"
    assert ask(AGENT_PORT, b"replica\n") == "down #patroni: not replica (primary, running)\n"
    # an unknown name gets the port's own profile
    assert ask(AGENT_PORT, b"nosuch\n") == "up\n"
    # Patroni is asked once per round, with GET on the -k endpoint, however
    # many profiles there are and however many checks arrive.
    standin.reset()
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 1.0 and n < 2000:
        for send in (None, b"replica\n", b"read-only\n"):
            ask(AGENT_PORT, send)
            n += 1
    stats = standin.stats()
    elapsed = time.monotonic() - t0
    assert stats["by_method"].keys() == {"GET"}, stats
    assert stats["last_request"] == "GET /primary", stats
    # interval 200ms: at most elapsed/0.18 + 2 rounds, whatever n was
    assert stats["requests"] <= elapsed / 0.18 + 2, (stats, n)
    assert n > 50
    assert h.alive()


def test_replica_profile_follows_role(happac, backends):
    standin = backends[1]
    happac("--profile", "replica:%d" % REPLICA_PORT)
    standin.set("replica")
    wait_reply(REPLICA_PORT, equals("up\n"), role_bound())
    reply, _ = wait_reply(AGENT_PORT, starts("down #"), bound())
    assert reply == "down #patroni /primary: 503\n"
    standin.set("primary")
    wait_reply(REPLICA_PORT, starts("down #patroni: not replica"), bound())
    wait_reply(AGENT_PORT, equals("up\n"), role_bound())


def test_wrong_role_drain_then_ready_once(happac, backends, workdir):
    standin = backends[1]
    cfg = conf(workdir, "drain.conf", "[profile replica]\nrule = replica\n"
               "wrong-role = drain\nport = %d\n" % REPLICA_PORT)
    h = happac("-c", cfg, "--ready-window", "1s")
    # primary node: the replica profile is healthy but the wrong role
    reply, _ = wait_reply(REPLICA_PORT, starts("up drain"), bound())
    assert reply == "up drain #patroni: not replica (primary, running)\n"
    standin.set("replica")
    reply, _ = wait_reply(REPLICA_PORT, starts("up ready"), role_bound())
    assert reply == "up ready\n"
    # said for the ready window, then plain up for good
    t0 = time.monotonic()
    wait_reply(REPLICA_PORT, equals("up\n"), 1.0 + bound())
    assert time.monotonic() - t0 >= 0.5
    for _ in range(10):
        assert ask(REPLICA_PORT) == "up\n"
    # a dead PgBouncer is down, whatever the role
    backends[0].kill()
    wait_reply(REPLICA_PORT, starts("down #pgbouncer"), bound())
    assert "verdict replica:" in h.log()


def test_operator_override_persists(happac, backends, workdir):
    sock = os.path.join(workdir, "happac.sock")
    state = os.path.join(workdir, "happac.state")
    args = ("--control-socket", sock, "--state-file", state, "--ready-window", "1s")
    h = happac(*args)
    ctl = [procs.happac_bin(), "ctl", "--socket", sock]
    r = subprocess.run(ctl + ["drain"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and r.stdout.startswith("ok drain"), r.stdout + r.stderr
    # the next check already says it (changed() runs before the reply)
    assert check(AGENT_PORT)[0] == "up drain\n"
    assert "override: drain set by uid 0" in h.log()
    # restart: the drain survives
    h.stop()
    happac(*args)
    assert check(AGENT_PORT)[0] == "up drain\n"
    r = subprocess.run(ctl + ["ready"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert check(AGENT_PORT)[0] == "up ready\n"
    wait_reply(AGENT_PORT, equals("up\n"), 1.0 + bound())


def test_ready_ramp_weights_rise(happac, backends, workdir):
    sock = os.path.join(workdir, "ramp.sock")
    happac("--control-socket", sock)
    ctl = [procs.happac_bin(), "ctl", "--socket", sock]
    subprocess.run(ctl + ["drain"], check=True, capture_output=True, timeout=10)
    subprocess.run(ctl + ["ready", "--ramp", "2s"], check=True, capture_output=True,
                   timeout=10)
    weights = []
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        words = check(AGENT_PORT)[0].split()
        pct = [w for w in words if w.endswith("%")]
        if pct:
            weights.append(int(pct[0][:-1]))
            if weights[-1] == 100:
                break
        time.sleep(0.1)
    assert weights and weights[0] < 50 and weights[-1] == 100, weights
    assert weights == sorted(weights), weights
    # HAProxy keeps the last weight: once said, a weight stays in the line
    assert check(AGENT_PORT)[0].startswith("up") and "100%" in check(AGENT_PORT)[0]


def test_health_per_profile_and_status(happac, backends):
    happac("--profile", "replica", "--http-listen", HTTP)
    body = urllib.request.urlopen("http://%s/health?profile=primary" % HTTP, timeout=5)
    assert body.status == 200 and body.read() == b"up\n"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen("http://%s/health?profile=replica" % HTTP, timeout=5)
    assert e.value.code == 503
    assert e.value.read().startswith(b"down #patroni: not replica")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen("http://%s/health?profile=nosuch" % HTTP, timeout=5)
    assert e.value.code == 404
    status = json.loads(urllib.request.urlopen("http://%s/status" % HTTP, timeout=5).read())
    names = [p["name"] for p in status["profiles"]]
    assert names == ["primary", "replica"]
    metrics = urllib.request.urlopen("http://%s/metrics" % HTTP, timeout=5).read().decode()
    assert 'happac_profile_up{profile="replica"} 0' in metrics
    assert 'happac_profile_up{profile="primary"} 1' in metrics


def test_profile_config_errors(happac_bin, workdir):
    bad = conf(workdir, "bad-profile.conf", "[profile fast]\nwrong-role = drain\n")
    rc, out, err, _ = procs.run_happac(["-h", ADDR, "-r", "6432", "-c", bad])
    assert rc == 2 and "[profile fast]: 'rule = ...' is missing" in err
    rc, out, err, _ = procs.run_happac(["-h", ADDR, "-r", "6432", "--profile", "nosuch"])
    assert rc == 2 and "unknown profile 'nosuch'" in err
    lag = conf(workdir, "lag.conf", "[profile replica]\nrule = replica\nlag-full = 1MB\n"
               "lag-cut = 16MB\n")
    rc, out, err, _ = procs.run_happac(["-h", ADDR, "-r", "6432", "-c", lag])
    assert rc == 2 and "--pg-conninfo" in err
    rc, out, err, _ = procs.run_happac(["-h", ADDR, "-r", "6432", "--profile", "replica:5555"])
    assert rc == 2 and "port 5555" in err


def test_new_primary_is_held_interval_plus_timeout(happac, backends):
    """A node that becomes primary says up only after Patroni said so for
    interval + timeout: the old primary's agent (which may keep its cached
    up that long) is down by then, so two agents never say up together."""
    standin = backends[1]
    h = happac()
    standin.set("replica")
    wait_reply(AGENT_PORT, equals("down #patroni /primary: 503\n"), bound())
    t0 = time.monotonic()
    standin.set("primary")
    reply, _ = wait_reply(AGENT_PORT, starts("down #patroni: primary role is new"), bound())
    wait_reply(AGENT_PORT, equals("up\n"), 2 * bound())
    held = time.monotonic() - t0
    # at least interval + timeout (0.35 s) after Patroni's 200, at most one
    # detection (interval + timeout) plus the hold plus the test margin
    assert 0.35 <= held <= 0.35 + bound(), held
    # a PgBouncer restart is not a role change: no hold after it
    backends[0].kill()
    wait_reply(AGENT_PORT, starts("down #pgbouncer"), bound())
    backends[0].ensure_running()
    reply, waited = wait_reply(AGENT_PORT, equals("up\n"), bound())
    assert "settling" not in h.log().split("pgbouncer 127.0.0.21:6432: connection refused")[-1]
