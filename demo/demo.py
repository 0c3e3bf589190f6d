#!/usr/bin/python3
"""`make demo`: a real three-node Patroni cluster with PgBouncer, happac and HAProxy.

Starts the lab of tests/cluster/cluster.py (everything on 127.0.0.0/8, in a temporary
directory), shows what each happac answers and what HAProxy makes of it, writes a row
through Scenario C, kills PgBouncer on the primary and shows HAProxy rerouting, restores
it, and stops everything -- also on Ctrl-C or an error.
"""

import importlib.util
import os
import signal
import sys
import time

# Run as root (the lab needs it); happac refuses root unless told.
if os.geteuid() == 0:
    os.environ.setdefault("HAPPAC_RUN_AS_ROOT", "1")

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "happac_cluster", os.path.join(HERE, "..", "tests", "cluster", "cluster.py"))
hc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hc)

T0 = time.monotonic()


def say(msg):
    print(f"[{time.monotonic() - T0:5.1f}s] {msg}", flush=True)


def show_agents(lab):
    for n, (reply, err) in lab.sample_agents().items():
        text = repr(reply.decode(errors="replace")) if reply is not None else f"no answer ({err})"
        say(f"  happac on node{n} ({hc.node_addr(n)}:{hc.AGENT_PORT}) answers {text}")


def show_haproxy(lab):
    rows = lab.show_stat()
    say("  HAProxy's view (show stat):")
    for be, how in (("scenario_a_write", "A  :5000 Patroni httpchk -> PgBouncer"),
                    ("scenario_b_write", "B  :5001 happac agent    -> PgBouncer"),
                    ("scenario_c_pgbouncer", "C  :5002 happac agent    -> PgBouncer"),
                    ("scenario_c_direct", "C' :5002 Patroni httpchk -> PostgreSQL (fallback)")):
        states = []
        for n in hc.NODES:
            r = rows[(be, hc.node_name(n))]
            states.append(f"node{n} {r['status']:<12}")
        say(f"    {how:<50} " + " ".join(states))


def write_c(lab, label):
    """One row through Scenario C's port; says which backend HAProxy picked."""
    before = lab.show_stat()
    ok, server, err = hc.write_once("127.0.0.1", hc.PORT_C, label, 0, deadline_s=5)
    after = lab.show_stat()
    via = [be for be in ("scenario_c_pgbouncer", "scenario_c_direct")
           if int(after[(be, "BACKEND")]["stot"]) > int(before[(be, "BACKEND")]["stot"])]
    path = {"scenario_c_pgbouncer": "via PgBouncer", "scenario_c_direct": "straight to PostgreSQL"}
    if ok:
        say(f"  wrote a row through 127.0.0.1:{hc.PORT_C}: acknowledged by PostgreSQL on {server}, "
            f"{' / '.join(path[v] for v in via) or 'route unknown'}")
    else:
        say(f"  write through 127.0.0.1:{hc.PORT_C} FAILED: {err}")
    return ok


def wait_reply(lab, n, word, what):
    say(f"waiting for happac on node{n} to say {word!r} ({what})...")
    t = time.monotonic()
    reply = hc.wait_for(f"happac on node{n} to say {word}",
                        lambda: (lambda r: r if r and hc.reply_word(r) == word else None)(
                            hc.agent_reply(n)[0]), 15, 0.05)
    say(f"  after {time.monotonic() - t:.1f}s happac on node{n} answers {reply.decode()!r}")


def wait_server(lab, be, n, status):
    """Wait until HAProxy shows be/node<n> in status (UP or DOWN) and knows the agent's word."""
    word = "up" if status == "UP" else "down"

    def there():
        row = lab.show_stat()[(be, hc.node_name(n))]
        return (row["status"] in (status, f"{status} (agent)")
                and row["last_agt"].startswith(f"via agent : {word}"))
    t = time.monotonic()
    hc.wait_for(f"HAProxy {be}/node{n} {status}", there, 15, 0.05)
    say(f"  after {time.monotonic() - t:.1f}s more, HAProxy has {be}/node{n} {status}")


def main():
    # Ctrl-C and SIGTERM both end in the Cluster's teardown (SIGINT is set explicitly
    # because a shell may start us with it ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    stack = hc.Stack()
    say(stack.banner())
    say("starting the lab: etcd, 3 x (Patroni + PostgreSQL, PgBouncer, happac), HAProxy")
    say("  node N lives on 127.0.0.1N: PostgreSQL 5432, PgBouncer 6432, Patroni 8008, happac 5555")
    ok = True
    with hc.Cluster(log=lambda m: say(f"  lab: {m}"), stack=stack) as lab:
        p = lab.primary()
        say(f"cluster is up; Patroni's primary is node{p} ({hc.node_addr(p)})")
        show_agents(lab)
        show_haproxy(lab)
        ok &= write_c(lab, "demo: before")

        say(f"killing PgBouncer on the primary node{p} (SIGKILL)")
        lab.kill_pgbouncer(p)
        wait_reply(lab, p, "down", "its PgBouncer login probe fails")
        wait_server(lab, "scenario_c_pgbouncer", p, "DOWN")
        wait_server(lab, "scenario_b_write", p, "DOWN")
        show_haproxy(lab)
        say(f"  HAProxy's last agent check of node{p}: "
            f"{lab.show_stat()[('scenario_c_pgbouncer', hc.node_name(p))]['last_agt']!r}")
        say("  Scenario A still routes to the dead PgBouncer (Patroni is fine): the gap happac closes.")
        say("  Scenario B has no usable server. Scenario C falls back to PostgreSQL directly:")
        ok &= write_c(lab, "demo: PgBouncer down")

        say(f"restarting PgBouncer on node{p}")
        lab.start_pgbouncer(p, wait=True)
        wait_reply(lab, p, "up", "PgBouncer answers again")
        wait_server(lab, "scenario_c_pgbouncer", p, "UP")
        wait_server(lab, "scenario_b_write", p, "UP")
        show_haproxy(lab)
        ok &= write_c(lab, "demo: restored")
        say("stopping everything")
    say("done: " + ("every write went through" if ok else "SOME WRITES FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        say("interrupted; everything was stopped")
        sys.exit(130)
    except hc.ClusterError as e:
        say(f"FAILED: {e}")
        sys.exit(1)
