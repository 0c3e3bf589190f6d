"""Patroni's role words and replication modes, on the real cluster of the stack under test:
the role word Patroni 3 and 4 say, `synchronous_mode: on` with the `sync` and `async`
profiles following `patronictl` changes, Patroni 4's quorum mode with the `quorum` and
`read-only-quorum` profiles, and a standby cluster for `standby-leader`.

Each happac here serves its profiles from the status JSON (agent-send picks one), not from
a request to the profile's own endpoint, and every answer is checked against what Patroni's
own endpoint says for the same node. Runs after the failure matrix on the same lab, from a
healthy cluster, and puts the cluster's settings back as it found them.
"""

import http.client
import json
import os
import time

import pytest

import happac_cluster as hc
from agentcheck import talk  # tests/lib

I, T = hc.HAPPAC_INTERVAL, hc.HAPPAC_TIMEOUT
# A role that becomes right is held back for I + T + AI (AI: HAProxy's agent-inter, which
# happac's default --haproxy-agent-inter matches), so HAProxy never has two UP. Following
# such a change takes: the round that sees it (I + T), the hold, and the round that ends
# the hold (I), plus one poll and sweep.
AI = hc.haproxy_check_settings()["scenario_b_write"]["agent_inter"]
DETECT = (I + T) + (I + T + AI) + I + 0.35
PORT = 5568                    # the extra happacs of this file
# Patroni's loop is 1 s (LOOP_WAIT); choosing a new sync standby takes a few loops.
PATRONI_SETTLES = 30
STANDBY_NODE = 4               # the standby cluster's node: 127.0.0.14


def ask(n, send, port=PORT, timeout=2.0):
    return talk((hc.node_addr(n), port), send.encode() + b"\n", timeout, cap=512)[0].decode()


def patroni_json(n, path="/patroni"):
    conn = http.client.HTTPConnection(hc.node_addr(n), hc.PATRONI_PORT, timeout=2)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def agrees(n, profile, endpoint=None):
    """happac's word for `profile` on node n, and whether it matches Patroni's
    own endpoint (200 = up), as (ok, detail)."""
    reply = ask(n, profile)
    code = hc.patroni_status(n, "/" + (endpoint or profile))
    want = "up" if code == 200 else "down"
    return reply.split()[0] == want, f"node{n} {profile}: happac {reply!r}, Patroni {code}"


def wait_agree(nodes, profiles, timeout, what):
    """Wait until happac and Patroni agree for every node and profile; return the words."""
    def check():
        words, bad = {}, []
        for n in nodes:
            for p in profiles:
                ok, detail = agrees(n, p)
                words[(n, p)] = detail
                if not ok:
                    bad.append(detail)
        return words if not bad else hc.Pending(bad)
    return hc.wait_for(what, check, timeout)


@pytest.fixture
def healthy(lab):
    return lab.wait_healthy(timeout=120)


@pytest.fixture
def extras(lab):
    """Start an extra happac on a node, serving profiles by agent-send; stopped afterwards."""
    started = []

    def start(n, *profiles):
        name = f"happac-modes{n}"
        addr = hc.node_addr(n)
        argv = [lab.happac_bin, "-h", addr, "-r", hc.PGBOUNCER_PORT, "-o", hc.PATRONI_PORT,
                # -k health: the request's own profile; every named one is from the JSON
                "-k", "health", "-p", PORT, "--listen", addr, "--interval", f"{int(I * 1000)}ms",
                "--timeout", f"{int(T * 1000)}ms"]
        for p in profiles:
            argv += ["--profile", p]
        lab._spawn(name, argv)
        started.append(name)
        hc.wait_for(f"{name} answers", lambda: ask(n, profiles[0]).startswith(("up", "down")), 10)
    yield start
    for name in started:
        lab._terminate(name, timeout=5)


def patroni_major(lab):
    return int(lab.stack.versions()["Patroni"].split(".")[0])


def test_the_cluster_runs_the_stack(lab, healthy):
    """Every node's Patroni and PostgreSQL are the stack's (the versions in the header);
    on a stack with a root they run in mount namespaces of their own, and the host's
    mount table holds nothing of the root (nothing to leave behind)."""
    versions = lab.stack.versions()
    for n in hc.NODES:
        j = patroni_json(n)
        assert j["patroni"]["version"] == versions["Patroni"], (n, j["patroni"])
        assert str(j["server_version"]).startswith(versions["PostgreSQL"].split(".")[0]), j
    own_ns = os.stat("/proc/self/ns/mnt").st_ino
    for name in ["etcd", "haproxy"] + [f"{p}{n}" for p in ("patroni", "pgbouncer") for n in hc.NODES]:
        ns = os.stat(f"/proc/{lab.pid(name)}/ns/mnt").st_ino
        assert (ns != own_ns) == (lab.stack.root is not None), name
    if lab.stack.root is not None:
        root = str(lab.stack.root.resolve())
        with open("/proc/self/mounts") as f:
            assert not [l for l in f if root in l]


def test_role_words(lab, healthy, extras):
    """Patroni 3 says `master`, Patroni 4 `primary`: happac reads both as the primary."""
    p = healthy
    replicas = [n for n in hc.NODES if n != p]
    role = patroni_json(p)["role"]
    assert role == ("primary" if patroni_major(lab) >= 4 else "master"), role
    assert {patroni_json(r)["role"] for r in replicas} == {"replica"}
    for n in hc.NODES:
        extras(n, "replica", "primary", "read-only")
    words = wait_agree(hc.NODES, ["primary", "replica", "read-only"], DETECT + 5,
                       "happac and Patroni agree on every role")
    assert ask(p, "primary") == "up\n", words
    assert ask(p, "replica") == f"down #patroni: not replica (primary, running)\n"
    for r in replicas:
        assert ask(r, "primary") == "down #patroni: not primary (replica, running)\n"
        assert ask(r, "replica") == "up\n"


def sync_nodes(replicas):
    return [r for r in replicas if hc.patroni_status(r, "/sync") == 200]


def test_sync_profile_follows_patronictl(lab, healthy, extras):
    """synchronous_mode on, then the sync standby moved by a nosync tag, then off: on each
    replica the sync and async profiles follow Patroni's /sync and /async."""
    p = healthy
    replicas = [n for n in hc.NODES if n != p]
    for r in replicas:
        extras(r, "sync", "async", "replica")
    wait_agree(replicas, ["sync", "async"], DETECT + 5, "both replicas async")
    assert all(ask(r, "async") == "up\n" for r in replicas)
    moved = None
    try:
        lab.edit_config("synchronous_mode=true")
        first = hc.wait_for("Patroni: one sync standby",
                            lambda: (lambda s: s[0] if len(s) == 1 else None)(sync_nodes(replicas)),
                            PATRONI_SETTLES)
        t0 = time.monotonic()
        wait_agree(replicas, ["sync", "async"], DETECT + 1, f"node{first} sync in happac too")
        print(f"sync standby node{first}: happac followed in {time.monotonic() - t0:.2f}s")
        other = next(r for r in replicas if r != first)
        assert ask(first, "sync") == "up\n" and ask(first, "async").startswith("down")
        assert ask(other, "sync") == "down #patroni: not sync (replica, running)\n"
        assert ask(other, "async") == "up\n"

        # nosync on the sync standby: Patroni moves the sync role to the other replica
        moved = first
        lab.retag_patroni(first, {"nosync": True})
        hc.wait_for(f"Patroni: node{other} the sync standby",
                    lambda: sync_nodes(replicas) == [other], PATRONI_SETTLES)
        t0 = time.monotonic()
        wait_agree(replicas, ["sync", "async"], DETECT + 1, f"node{other} sync in happac too")
        print(f"sync standby moved to node{other}: happac followed in {time.monotonic() - t0:.2f}s")
        assert ask(other, "sync") == "up\n" and ask(first, "sync").startswith("down")
    finally:
        if moved:
            lab.retag_patroni(moved, {})
        lab.edit_config("synchronous_mode=false")
    hc.wait_for("Patroni: no sync standby", lambda: sync_nodes(replicas) == [], PATRONI_SETTLES)
    wait_agree(replicas, ["sync", "async"], DETECT + 1, "both replicas async again")


@pytest.mark.needs("Patroni", "4.0", "synchronous_mode: quorum and /quorum, /read-only-quorum "
                   "came with Patroni 4.0")
def test_quorum_profiles_follow_patroni(lab, healthy, extras):
    """synchronous_mode: quorum: the replicas are quorum standbys (not sync, not async);
    quorum and read-only-quorum agree with Patroni's endpoints on every node."""
    p = healthy
    replicas = [n for n in hc.NODES if n != p]
    profiles = ["quorum", "read-only-quorum", "async", "sync"]
    for n in hc.NODES:
        extras(n, *profiles)
    wait_agree(hc.NODES, profiles, DETECT + 5, "happac and Patroni agree, no quorum yet")
    assert all(ask(r, "quorum").startswith("down") for r in replicas)
    try:
        lab.edit_config("synchronous_mode=quorum")
        hc.wait_for("Patroni: both replicas quorum standbys",
                    lambda: all(hc.patroni_status(r, "/quorum") == 200 for r in replicas),
                    PATRONI_SETTLES)
        assert all(patroni_json(r).get("quorum_standby") for r in replicas)
        wait_agree(hc.NODES, profiles, DETECT + 1, "happac follows quorum mode")
        for r in replicas:
            assert ask(r, "quorum") == "up\n"
            assert ask(r, "read-only-quorum") == "up\n"
            assert ask(r, "async") == "down #patroni: not async (replica, running)\n"
        assert ask(p, "read-only-quorum") == "up\n"
        assert ask(p, "quorum") == "down #patroni: not quorum (primary, running)\n"
    finally:
        lab.edit_config("synchronous_mode=false")
    hc.wait_for("Patroni: no quorum standby",
                lambda: all(hc.patroni_status(r, "/quorum") != 200 for r in replicas),
                PATRONI_SETTLES)
    wait_agree(hc.NODES, profiles, DETECT + 1, "happac follows quorum mode off")


def test_standby_cluster_standby_leader(lab, healthy, extras):
    """A second Patroni cluster on 127.0.0.14 with standby_cluster pointing at the
    primary: its leader is a standby leader, which the standby-leader profile (and
    read-only) says up for, and primary and replica down."""
    p = healthy
    n = STANDBY_NODE
    try:
        lab.start_standby_cluster(n, (hc.node_addr(p), hc.PG_PORT))
        hc.wait_for("Patroni on node4: /standby-leader 200",
                    lambda: (hc.patroni_status(n, "/standby-leader") == 200
                             or (not lab.running(f"patroni{n}")
                                 and pytest.fail(lab.tail(f"patroni{n}", 40)))),
                    90, 0.2)
        lab.wait_pgbouncer(n)
        assert patroni_json(n)["role"] == "standby_leader"
        extras(n, "standby-leader", "primary", "replica", "read-only")
        wait_agree([n], ["standby-leader", "primary", "replica", "read-only"], DETECT + 5,
                   "happac and Patroni agree on the standby leader")
        assert ask(n, "standby-leader") == "up\n"
        assert ask(n, "read-only") == "up\n"
        assert ask(n, "primary") == "down #patroni: not primary (standby leader, running)\n"
        assert ask(n, "replica") == "down #patroni: not replica (standby leader, running)\n"
        # it really replicates the first cluster: a row written there arrives
        ok, _, err = hc.write_once(hc.node_addr(p), hc.PG_PORT, "standby", 1)
        assert ok, err
        hc.wait_for("the row on the standby cluster", lambda: _count(n, "standby") >= 1, 20)
    finally:
        lab.stop_node(n)


def _count(n, label):
    import psycopg2
    conn = psycopg2.connect(host=hc.node_addr(n), port=hc.PG_PORT, dbname="postgres",
                            user=hc.POSTGRES_USER, connect_timeout=2)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM happac_writes WHERE label = %s", (label,))
            return cur.fetchone()[0]
    finally:
        conn.close()
