"""Profiles, agent-send dispatch, wrong-role words and operator overrides,
against the real PgBouncer/PostgreSQL and the Patroni stand-in (which answers
GET with a Patroni 3.x-shaped status JSON whose role follows its mode).
The same behaviour against a real Patroni cluster is in tests/cluster."""

import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import agentcheck
import procs
from agent_client import check, equals, starts, wait_reply
from procs import ADDR, AGENT_PORT, poll_until

REPLICA_PORT = 5556
HTTP = "%s:8098" % ADDR


def bound():
    return 0.2 + 0.15 + 0.3


HOLD = 0.2 + 0.15 + 0.2  # interval + timeout + haproxy-agent-inter (conftest)


def role_bound():
    """A role that becomes right: detection plus the hold."""
    return bound() + HOLD


def ask(port, send=None, addr=ADDR):
    """One agent check that may name a profile first, as agent-send does."""
    return agentcheck.talk((addr, port), send)[0].decode()


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
    # an unknown name never gets the port's own profile
    assert ask(AGENT_PORT, b"nosuch\n") == "down #unknown profile nosuch\n"
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
    # interval 200ms, halved while this agent says up for the primary (the
    # agent a handover waits for, main_hold.c): at most elapsed/0.09 + 2
    # rounds, whatever n was
    assert stats["requests"] <= elapsed / 0.09 + 2, (stats, n)
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
    # sizes: bounded before they are multiplied, never negative (2^33 GB
    # overflowed int64_t to INT64_MIN, which then passed as a lag-full)
    for value, why in (("8589934592GB", "too large (at most 1024TB)"),
                       ("-9223372036854775808", "a size cannot be negative"),
                       ("-1MB", "a size cannot be negative")):
        big = conf(workdir, "big.conf", "[profile replica]\nrule = replica\nlag-full = %s\n"
                   "lag-cut = 1MB\n" % value)
        rc, out, err, _ = procs.run_happac(["-h", ADDR, "-r", "6432", "--pg-conninfo",
                                            "dbname=postgres", "-c", big, "-t"])
        assert rc == 2 and out == "", (value, out, err)
        assert "big.conf:3: lag-full: '%s': %s" % (value, why) in err, (value, err)
    lag = conf(workdir, "lag.conf", "[profile replica]\nrule = replica\nlag-full = 1MB\n"
               "lag-cut = 16MB\n")
    rc, out, err, _ = procs.run_happac(["-h", ADDR, "-r", "6432", "-c", lag])
    assert rc == 2 and "--pg-conninfo" in err
    rc, out, err, _ = procs.run_happac(["-h", ADDR, "-r", "6432", "--profile", "replica:5555"])
    assert rc == 2 and "port 5555" in err


def test_new_primary_is_held_interval_plus_timeout(happac, backends):
    """A node that becomes primary says up only after Patroni said so for
    interval + timeout + haproxy-agent-inter: the old primary's agent (which
    may keep its cached up for interval + timeout) is down by then, and so is
    its server in HAProxy (which hears that at its next agent check, up to
    agent-inter later), so two servers are never UP together. Here with the
    default agent-inter, 250ms, as `happac recipe haproxy` writes it."""
    standin = backends[1]
    h = happac(agent_inter=None)
    hold = 0.2 + 0.15 + 0.25
    standin.set("replica")
    wait_reply(AGENT_PORT, equals("down #patroni /primary: 503\n"), bound())
    t0 = time.monotonic()
    standin.set("primary")
    reply, _ = wait_reply(AGENT_PORT, starts("down #patroni: primary role is new"), bound())
    wait_reply(AGENT_PORT, equals("up\n"), hold + 2 * bound())
    held = time.monotonic() - t0
    # at least the hold after Patroni's 200, at most one detection
    # (interval + timeout) plus the hold plus the test margin
    assert hold <= held <= hold + bound(), held
    # a PgBouncer restart is not a role change: no hold after it
    backends[0].kill()
    wait_reply(AGENT_PORT, starts("down #pgbouncer"), bound())
    backends[0].ensure_running()
    reply, waited = wait_reply(AGENT_PORT, equals("up\n"), bound())
    assert "settling" not in h.log().split("pgbouncer 127.0.0.21:6432: connection refused")[-1]


def test_unknown_profile_name_is_down(happac, backends):
    """A misspelt agent-send name must never get the port's own profile: on a
    replica whose port serves the replica profile, "Primary" or "primay" got
    `up`, i.e. a backend that wants the primary listed a replica. Names match
    exactly (case-sensitive, as Patroni's endpoints); an unknown one gets
    `down #unknown profile NAME` and is counted."""
    standin = backends[1]
    standin.set("replica")
    happac("--profile", "primary", "--http-listen", HTTP, endpoint="replica")
    wait_reply(AGENT_PORT, equals("up\n"), role_bound())
    assert ask(AGENT_PORT, b"replica\n") == "up\n"
    assert ask(AGENT_PORT, b"primary\n").startswith("down #patroni: not primary")
    assert ask(AGENT_PORT, b"Primary\n") == "down #unknown profile Primary\n"
    assert ask(AGENT_PORT, b"primay\r\n") == "down #unknown profile primay\n"
    # no line end before the wait ends: what came is the name
    assert ask(AGENT_PORT, b"primay") == "down #unknown profile primay\n"
    assert ask(AGENT_PORT, b"replica") == "up\n"
    # the name goes back cleaned and bounded
    assert ask(AGENT_PORT, b"a b\x01#up " + b"x" * 40 + b"\n") == \
        "down #unknown profile a?b??up?" + "x" * 24 + "...\n"
    # an empty line names nothing: the port's own profile
    assert ask(AGENT_PORT, b"\n") == "up\n"
    metrics = urllib.request.urlopen("http://%s/metrics" % HTTP, timeout=5).read().decode()
    assert "happac_agent_unknown_profile_total 4\n" in metrics, metrics


def test_primary_profile_needs_the_leader_lock(happac, backends):
    """The status JSON's role comes from pg_is_in_recovery(): an old primary
    that lost the leader lock (isolated, or its Patroni loop stuck) still
    says master/running while Patroni answers 503 on every endpoint. A
    primary profile must then be down, as Patroni's /primary is: happac asks
    OPTIONS /leader each round when the -k endpoint cannot tell."""
    standin = backends[1]
    standin.set("isolated")
    h = happac("--profile", "primary:%d" % REPLICA_PORT, "--profile", "read-only",
               endpoint="replica")
    assert ask(AGENT_PORT) == "down #patroni /replica: 503\n"
    assert ask(REPLICA_PORT) == "down #patroni: not primary (primary, running, no leader lock)\n"
    assert ask(AGENT_PORT, b"read-only\n") == \
        "down #patroni: not read-only (primary, running, no leader lock)\n"
    standin.reset()
    # the same node holding the lock: up after the hold; one GET and one
    # OPTIONS /leader per round
    standin.set("primary")
    wait_reply(REPLICA_PORT, equals("up\n"), role_bound())
    assert ask(AGENT_PORT, b"read-only\n") == "up\n"
    stats = standin.stats()
    assert set(stats["by_method"]) == {"GET", "OPTIONS"}, stats
    # (plus the one GET /cluster of the hold: the peers, issue 16)
    assert abs(stats["by_method"]["GET"] - stats["by_method"]["OPTIONS"]) <= 2, stats
    # it loses the lock: down within one detection
    standin.set("isolated")
    wait_reply(REPLICA_PORT, starts("down #patroni: not primary"), bound())
    assert h.alive()


def health(profile="primary"):
    """(status, body) of GET /health?profile=NAME (the default profile: primary)."""
    url = "http://%s/health?profile=%s" % (HTTP, profile)
    try:
        r = urllib.request.urlopen(url, timeout=5)
        return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def happac_check(port):
    r = subprocess.run([procs.happac_bin(), "check", "--host", ADDR, "--port", str(port)],
                       capture_output=True, text=True, timeout=10)
    return r.returncode, r.stdout


def test_health_and_check_pass_only_when_serving(happac, backends, workdir):
    """One notion of passing for /health, `happac check` (and so both Consul
    checks): up without drain or maint, i.e. HAProxy sends new traffic.
    `up drain` / `up maint` are up for HAProxy but out of rotation."""
    sock = os.path.join(workdir, "health.sock")
    cfg = conf(workdir, "health.conf", "[profile replica]\nrule = replica\n"
               "wrong-role = drain\nport = %d\n" % REPLICA_PORT)
    happac("-c", cfg, "--control-socket", sock, "--http-listen", HTTP, "--ready-window", "5s")
    ctl = [procs.happac_bin(), "ctl", "--socket", sock]
    assert health() == (200, "up\n")
    assert happac_check(AGENT_PORT) == (0, "up\n")
    # wrong-role drain (the replica profile on a primary)
    reply, _ = wait_reply(REPLICA_PORT, starts("up drain"), bound())
    assert health("replica") == (503, reply)
    assert happac_check(REPLICA_PORT) == (2, reply)
    # operator overrides
    for word in ("drain", "maint"):
        subprocess.run(ctl + [word], check=True, capture_output=True, timeout=10)
        assert health() == (503, "up %s\n" % word)
        assert happac_check(AGENT_PORT) == (2, "up %s\n" % word)
        status = json.loads(urllib.request.urlopen("http://%s/status" % HTTP,
                                                   timeout=5).read())
        assert (status["verdict"], status["passing"]) == ("up", False), status
        assert [p["passing"] for p in status["profiles"]] == [False, False], status
    # ready (and a ramp's weight) is serving again
    subprocess.run(ctl + ["ready"], check=True, capture_output=True, timeout=10)
    assert health() == (200, "up ready\n")
    assert happac_check(AGENT_PORT) == (0, "up ready\n")
    status = json.loads(urllib.request.urlopen("http://%s/status" % HTTP, timeout=5).read())
    assert status["passing"] is True, status
