"""Patroni's health paths on the HTTP side port (issue #17), served from
happac's cache: Patroni's 200/503 semantics and PgBouncer's state, one Patroni
request per round however many checks come. Real PgBouncer/PostgreSQL and the
Patroni stand-in (for the role it plays at will)."""

import os
import re
import subprocess

import pytest
import yaml

import procs

from harness import hammer
from procs import ADDR, poll_until
from test_http import HTTP_PORT, get

# Patroni's code for each path on a primary holding the leader lock, and on a
# streaming replica (api.py do_GET, do_GET_liveness, do_GET_readiness).
PRIMARY_200 = {"/", "/primary", "/master", "/read-write", "/leader", "/read-only",
               "/read-only-sync", "/read-only-synchronous", "/read-only-quorum",
               "/liveness", "/readiness", "/health"}
REPLICA_200 = {"/replica", "/read-only", "/async", "/asynchronous", "/liveness",
               "/readiness", "/health"}
PATHS = sorted(PRIMARY_200 | REPLICA_200 | {
    "/sync", "/synchronous", "/quorum", "/standby-leader", "/standby_leader"})
METHODS = ("GET", "HEAD", "OPTIONS")


@pytest.fixture
def paths_happac(happac, backends):
    return happac("--http-listen", "%s:%d" % (ADDR, HTTP_PORT))


def codes():
    return {(p, m): get(p, method=m)[0] for p in PATHS for m in METHODS}


def wait_codes(want, what):
    got = {}

    def same():
        got.clear()
        got.update(codes())
        return got == want
    try:
        poll_until(same, 5, step=0.1, what=what)
    except Exception:
        diff = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
        raise AssertionError("%s: (happac, expected) %s" % (what, diff))


def test_every_path_and_method_follows_patroni_on_a_primary(paths_happac):
    wait_codes({(p, m): 200 if p in PRIMARY_200 else 503 for p in PATHS for m in METHODS},
               "primary codes")
    status, body, headers = get("/primary")
    assert (status, body) == (200, b"up\n")
    assert headers["Content-Type"].startswith("text/plain")
    status, body, _ = get("/replica")
    assert status == 503 and body.startswith(b"down #patroni: not replica (primary")
    for m in ("HEAD", "OPTIONS"):   # the status only, as Patroni sends it
        status, body, headers = get("/primary", method=m)
        assert (status, body, headers["Content-Length"]) == (200, b"", "0")


def test_every_path_and_method_follows_patroni_on_a_replica(paths_happac, backends):
    backends[1].set("replica")
    # a role that just became right settles first (the switchover hold)
    poll_until(lambda: get("/replica")[0] == 200, 5, what="replica settled")
    wait_codes({(p, m): 200 if p in REPLICA_200 else 503 for p in PATHS for m in METHODS},
               "replica codes")


def test_a_misrouted_pgbouncer_is_503_where_patroni_says_200(happac, backends):
    from test_routing import CONNINFO
    happac("--pg-conninfo", CONNINFO, "--http-listen", "%s:%d" % (ADDR, HTTP_PORT))
    backends[1].set("replica")
    # PgBouncer reaches the (real) primary PostgreSQL: the paths that need a
    # replica behind it stay 503 although Patroni says 200 for them.
    poll_until(lambda: b"role mismatch" in get("/replica")[1], 5, what="replica judged")
    assert get("/read-only")[0] == 200    # either role behind PgBouncer will do
    for path in ("/replica", "/async", "/asynchronous"):
        status, body, _ = get(path)
        assert status == 503 and b"role mismatch: pgbouncer reaches a primary" in body, body


@pytest.mark.parametrize("how", ["kill", "freeze"])
def test_a_dead_or_frozen_pgbouncer_is_503_where_patroni_says_200(paths_happac, backends,
                                                                  how):
    getattr(backends[0], how)()
    try:
        wait_codes({(p, m): 503 for p in PATHS for m in METHODS}, "all 503 (%s)" % how)
        status, body, _ = get("/primary")
        assert status == 503 and body.startswith(b"down #pgbouncer")
        # Patroni itself still says 200: only happac sees PgBouncer.
        assert backends[1].stats()["mode"] == "primary"
    finally:
        if how == "freeze":
            backends[0].thaw()
    if how == "freeze":
        wait_codes({(p, m): 200 if p in PRIMARY_200 else 503 for p in PATHS
                    for m in METHODS}, "back after thaw")


def test_query_parameters(paths_happac, backends):
    assert get("/primary?tag_nofailover=true")[0] == 200   # Patroni ignores tags here
    assert get("/leader?lag=1MB")[0] == 200                # and lag
    for path, word in (("/read-only?tag_dc=east", b"tag_dc: happac does not see"),
                       ("/replica?replication_state=streaming", b"replication_state:"),
                       ("/read-only?lag=ten", b"lag=ten: not a size"),
                       ("/replica?lag=-1", b"lag=-1: a size cannot be negative")):
        status, body, _ = get(path)
        assert status == 400 and body.startswith(word), (path, body)
        assert get(path, method="HEAD")[:2] == (400, b"")
    # on a primary the lag does not count (Patroni: replicas only)
    assert get("/read-only?lag=0")[0] == 200
    backends[1].set("replica")
    poll_until(lambda: get("/replica")[0] == 200, 5, what="replica settled")
    # a replica whose lag this happac does not measure (no --pg-conninfo)
    status, body, _ = get("/read-only?lag=16MB")
    assert status == 400 and body.startswith(b"lag: happac does not know"), body


def test_bare_health_is_patronis_and_a_profile_is_named(paths_happac, backends):
    """Bare /health is Patroni's path (PostgreSQL running, any role) with
    PgBouncer's state; ?profile=NAME is that happac profile's answer."""
    assert get("/health")[:2] == (200, b"up\n")
    backends[1].set("replica")
    poll_until(lambda: get("/replica")[0] == 200, 5, what="replica settled")
    # a replica: Patroni's /health is 200, the default profile (primary) 503
    assert get("/health")[:2] == (200, b"up\n")
    status, body, _ = get("/health?profile=primary")
    assert status == 503 and body.startswith(b"down #patroni"), body
    # Patroni's query parameters are Patroni's: tags are unknown to happac
    status, body, _ = get("/health?tag_dc=east")
    assert status == 400 and body.startswith(b"tag_dc: happac does not see"), body
    backends[0].kill()
    poll_until(lambda: get("/health")[0] == 503, 5, what="/health 503")
    status, body, _ = get("/health")
    assert body.startswith(b"down #pgbouncer"), body
    assert get("/health", method="OPTIONS")[:2] == (503, b"")


def test_k8s_recipe_probes_are_answered(paths_happac):
    """The probes `happac recipe k8s` prints, asked as the kubelet asks them
    (GET; 200-399 passes): on a primary, readiness passes for /primary and
    fails for /replica; liveness passes."""
    for profile, want in (("primary", 200), ("replica", 503), ("read-only", 200)):
        out = subprocess.run([procs.happac_bin(), "recipe", "k8s", "--profile", profile,
                              "--http-port", str(HTTP_PORT)], check=True,
                             capture_output=True, text=True).stdout
        doc = yaml.safe_load(out)
        ready, live = doc["readinessProbe"]["httpGet"], doc["livenessProbe"]["httpGet"]
        assert ready["port"] == live["port"] == HTTP_PORT
        poll_until(lambda: get(ready["path"])[0] == want, 5, what=ready["path"])
        assert get(live["path"])[0] == 200


def test_drain_is_503_on_every_path_but_liveness(happac, backends, workdir):
    """An operator's drain/maint takes the node out of rotation: every path
    says 503, except /liveness (out of rotation is not dead: a liveness probe
    must not restart anything for it)."""
    sock = os.path.join(workdir, "paths.sock")
    happac("--control-socket", sock, "--http-listen", "%s:%d" % (ADDR, HTTP_PORT))
    poll_until(lambda: get("/primary")[0] == 200, 5, what="/primary 200")
    for word in ("drain", "maint"):
        subprocess.run([procs.happac_bin(), "ctl", "--socket", sock, word], check=True,
                       capture_output=True, timeout=10)
        poll_until(lambda: get("/primary")[0] == 503, 5, what="/primary 503 (%s)" % word)
        for path in PATHS:
            for m in METHODS:
                want = 200 if path == "/liveness" else 503
                assert get(path, method=m)[0] == want, (word, path, m)
        assert get("/liveness")[1] == ("up %s\n" % word).encode()
        assert get("/health?profile=primary")[0] == 503


def test_unconfigured_profiles_answer_on_health(paths_happac):
    assert get("/health?profile=read-only")[0] == 200
    status, body, _ = get("/health?profile=replica")
    assert status == 503 and body.startswith(b"down #patroni: not replica")
    assert get("/health?profile=nosuch")[0] == 404


def test_bad_requests_on_the_new_paths(paths_happac):
    status, _, headers = get("/primary", method="POST")
    assert status == 405 and headers.get("Allow") == "GET, HEAD, OPTIONS"
    assert get("/status", method="OPTIONS")[0] == 405
    assert get("/primaryx")[0] == 404 and get("/primary/")[0] == 404
    assert get("/primary", headers={"X-Big": "a" * 9000})[0] == 431
    assert paths_happac.alive()


def metric(name):
    text = get("/metrics")[1].decode()
    m = re.search(r"^%s (\d+)" % re.escape(name), text, re.M)
    assert m, name
    return int(m.group(1))


def test_checks_cost_patroni_nothing(paths_happac, backends):
    """2,000 checks from 16 clients: every one answered, and Patroni sees
    one request per round (the stand-in counts them), not one per check."""
    backends[1].reset()
    rounds0 = metric("happac_probe_rounds_total")
    per = 2000 // 16
    answered, failed = hammer(lambda i, j: get(PATHS[(i + j) % len(PATHS)])[0], 16, per,
                              join_s=120)
    rounds = metric("happac_probe_rounds_total") - rounds0
    seen = backends[1].stats()["requests"]
    assert not failed, failed[:5]
    assert len(answered) == 16 * per and set(answered) <= {200, 503}
    # one Patroni request per round (+1: a round in flight at either end)
    assert seen <= rounds + 1, (seen, rounds)
    assert seen < len(answered) / 10
