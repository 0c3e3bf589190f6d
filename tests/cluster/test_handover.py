"""Handover in a fraction of a second (issue 16), on the session's lab.

Five switchovers with happac's default flags and no Patroni callbacks, three with the
callbacks and before_stop of `happac recipe patroni`, then one switchover each with the
third node's agent down, firewalled (a stand-in that accepts and never answers) and
answering garbage (a stand-in). Per switchover, own samplers every FAST seconds watch the
candidate's Patroni /primary, all three agents and HAProxy; writers run through A, B and C.

Measured: new primary's agent `up` − its Patroni's /primary 200 (median: ≤ 0.6 s
without callbacks, over five; ≤ 0.15 s with them, over three); HAProxy B using the new primary ≤ 1.0 s
after that 200; never two agents `up`; no write acknowledged by the old primary after the
new one's 200; B's failed-write window below A's. A peer that cannot confirm keeps the
timer hold (interval + timeout + agent-inter).
"""

import statistics
import threading
import time

import psycopg2
import pytest

import happac_cluster as hc
from standin import Listener

FAST = 0.025                       # this module's samplers
OBS = FAST + 0.05                  # a sample is late by one period and one request
I, T = hc.HAPPAC_INTERVAL, hc.HAPPAC_TIMEOUT
AI = hc.haproxy_check_settings()["scenario_b_write"]["agent_inter"]
ROLE_HOLD = I + T + AI             # the timer hold, with happac's default agent-inter
WATCH_MAX = 60.0                   # every sampler stops by itself after this
WRITE_PERIOD = 0.05
PORTS = {"A": hc.PORT_A, "B": hc.PORT_B, "C": hc.PORT_C}

RESULTS = {}                       # variant -> [per-switchover dict], for the report


class Watch(threading.Thread):
    """fn() every FAST seconds, at most WATCH_MAX; samples: (monotonic time, value)."""

    def __init__(self, fn, name):
        super().__init__(daemon=True, name=name)
        self.fn, self.samples, self.halt = fn, [], threading.Event()

    def run(self):
        end = time.monotonic() + WATCH_MAX
        while not self.halt.is_set() and time.monotonic() < end:
            try:
                v = self.fn()
            except Exception as e:  # a failed sample is a sample
                v = e
            self.samples.append((time.monotonic(), v))
            self.halt.wait(FAST)

    def stop(self):
        self.halt.set()
        self.join(5)

    def first(self, pred, after=0.0):
        for t, v in list(self.samples):
            if t >= after and not isinstance(v, Exception) and pred(v):
                return t
        return None


def _agents():
    return {n: hc.agent_reply(n, 0.5)[0] for n in hc.NODES}


def _b_status(lab, n):
    return lab.show_stat()[("scenario_b_write", hc.node_name(n))]["status"].replace(" (agent)", "")


def _failed_window(writer, t_from):
    failed = [r for r in list(writer.records) if r[0] >= t_from and not r[2]]
    return failed[-1][1] - failed[0][0] if failed else 0.0


LAST_OLD = []                      # the old primary of each switchover so far


def _pgbouncer_reaches_postgres(n):
    """A query through node n's PgBouncer succeeds (it is not in its server_login_retry
    after its PostgreSQL was stopped: a lab artifact that would hold every port's writes
    alike and hide what routing does)."""
    try:
        conn = psycopg2.connect(host=hc.node_addr(n), port=hc.PGBOUNCER_PORT, dbname="postgres",
                                user=hc.POSTGRES_USER, connect_timeout=2)
    except psycopg2.Error as e:
        return hc.Pending(str(e).strip())
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            return cur.fetchone() == (1,)
    except psycopg2.Error as e:
        return hc.Pending(str(e).strip())
    finally:
        conn.close()


def switchover(lab, label):
    """One switchover from the primary to a replica, watched; returns the measurements.
    The candidate is the replica that was not the last old primary, once its PgBouncer
    reaches its PostgreSQL."""
    p = lab.wait_healthy()
    replicas = [n for n in hc.NODES if n != p]
    new = ([n for n in replicas if n not in LAST_OLD[-1:]] or replicas)[0]
    LAST_OLD.append(p)
    hc.wait_for(f"node{new}'s PgBouncer reaching PostgreSQL", lambda: _pgbouncer_reaches_postgres(
        new), 30, 0.2)
    writers = {k: hc.Writer(port, f"{label}:{k}", WRITE_PERIOD, WATCH_MAX, deadline_s=2.0)
               for k, port in PORTS.items()}
    watches = [Watch(lambda: hc.patroni_status(new, "/primary", "OPTIONS", 0.5), "patroni"),
               Watch(_agents, "agents"), Watch(lambda: _b_status(lab, new), "haproxy"),
               Watch(lambda: hc.patroni_status(p, "/primary", "OPTIONS", 0.5), "patroni-old")]
    pat, ags, hap, pat_old = watches
    for w in list(writers.values()) + watches:
        w.start()
    try:
        hc.wait_for("writes through A, B and C", lambda: all(
            len([r for r in list(w.records) if r[2]]) >= 3 for w in writers.values()), 20, 0.05)
        t_sw = time.monotonic()
        lab.switchover(p, new)
        hc.wait_for("the candidate's agent up", lambda: ags.first(
            lambda v: v[new] == b"up\n", t_sw), 30, 0.05)
        hc.wait_for("HAProxy B with the candidate UP", lambda: hap.first(
            lambda v: v == "UP", t_sw), 30, 0.05)
        assert lab.wait_healthy(timeout=60) == new
        for k in PORTS:  # writes land on the new primary again
            hc.wait_for(f"writes on {k} through the new primary", lambda k=k: [
                r for r in list(writers[k].records) if r[2] and r[3] == hc.node_addr(new)
                and r[0] > t_sw], 20, 0.05)
    finally:
        for w in list(writers.values()) + watches:
            w.stop()
    t_200 = pat.first(lambda v: v == 200, t_sw)
    t_up = ags.first(lambda v: v[new] == b"up\n", t_sw)
    t_b = hap.first(lambda v: v == "UP", t_sw)
    assert t_200 is not None and t_up is not None and t_b is not None
    two_up = [(t, v) for t, v in ags.samples if not isinstance(v, Exception)
              and [hc.reply_word(r) for r in v.values() if r].count("up") > 1]
    late = {k: [r for r in list(w.records) if r[2] and r[3] == hc.node_addr(p) and r[1] >= t_200]
            for k, w in writers.items()}
    old_lines = {v[p] for t, v in ags.samples if not isinstance(v, Exception) and t >= t_sw}
    t_503 = pat_old.first(lambda v: v != 200, t_sw)
    # Patroni's 200 -> the first write acknowledged by the new primary, per port
    routed = {k: min([r[1] for r in list(w.records) if r[2] and r[3] == hc.node_addr(new)
                      and r[0] >= t_sw], default=t_200) - t_200 for k, w in writers.items()}
    return {"old": p, "new": new, "up": t_up - t_200, "b": t_b - t_200, "two_up": two_up,
            "patroni": t_200 - t_503 if t_503 else None, "routed": routed,
            "late": late, "old_lines": old_lines,
            "windows": {k: _failed_window(w, t_sw) for k, w in writers.items()},
            "log": lab.tail(f"happac{new}", 40)}


def median(rows, key):
    return statistics.median(r[key] for r in rows)


def report_line(report_lines, variant, rows):
    w = {k: statistics.median(r["windows"][k] for r in rows) for k in PORTS}
    line = (f"handover {variant}: new_happac_up " + ",".join(f"{r['up']:.2f}s" for r in rows)
            + f" (median {median(rows, 'up'):.2f}s), haproxy_B_new_up "
            + ",".join(f"{r['b']:.2f}s" for r in rows)
            + " failed_write_windows(median) " + " ".join(f"{k}={v:.2f}s" for k, v in w.items())
            + " first_write_on_new_after_200(median) " + " ".join(
                f"{k}={statistics.median(r['routed'][k] for r in rows):.2f}s" for k in PORTS)
            + " patroni_503_to_200 " + ",".join(
                "-" if r["patroni"] is None else f"{r['patroni']:.2f}s" for r in rows))
    report_lines.append(line)
    print(line)


def check_safe(rows):
    for r in rows:
        assert not r["two_up"], f"two agents said up: {r['two_up'][0]}"
        for k, late in r["late"].items():
            assert not late, f"{k}: writes acknowledged by the old primary after the new 200: {late[:3]}"


@pytest.fixture(scope="module")
def handover_lab(lab):
    yield lab
    if lab.callbacks:
        lab.set_callbacks(False)
    # Leave the lab as the next module expects it: every PgBouncer out of the
    # server_login_retry that this module's demotions left it in (a steady
    # state's writes would fail on it).
    lab.wait_healthy()
    for n in hc.NODES:
        hc.wait_for(f"node{n}'s PgBouncer reaching PostgreSQL",
                    lambda n=n: _pgbouncer_reaches_postgres(n), 30, 0.2)


NOCB_SWITCHOVERS = 5


def test_handover_default_flags_no_callbacks(handover_lab, report):
    """Default flags, no callbacks: the candidate's agent says up within 0.6 s (median)
    of its Patroni's 200: the round that sees the 200 asks the peers, whose agents
    already say down, and the hold ends on that evidence.

    Without a callback the candidate learns of its promotion at its own next round (on
    Patroni 3.0.4+ often earlier: its replication_state ends when the old primary stops,
    and the rounds speed up), so each figure is spread over up to an interval; the issue
    asks for the median of three, and five switchovers measure the same median with less
    noise."""
    lab = handover_lab
    rows = [switchover(lab, f"nocb{i}") for i in range(NOCB_SWITCHOVERS)]
    RESULTS["no callbacks"] = rows
    report_line(report, "no callbacks", rows)
    check_safe(rows)
    assert median(rows, "up") <= 0.6, [r["up"] for r in rows]
    released = [r for r in rows if "hold released by node" in r["log"]]
    assert released, "no switchover logged a hold released by the peers:\n" + rows[-1]["log"]


def test_handover_recipe_callbacks(handover_lab, report):
    """With `happac recipe patroni` in patroni.yml: up within 0.15 s (median of three),
    HAProxy B uses the new primary within 1.0 s of Patroni's 200, and B's failed-write
    window is below A's (A: HAProxy asking Patroni itself).

    The 0.15 s assumes the whole recipe, before_stop included (Patroni 3.0.3+). Patroni
    3.0.2 ignores before_stop: there the old primary's agent learns of its demotion at its
    own round (every half interval while it says up, src/main_hold.c), and the bound is
    0.3 s (measured 0.00-0.15 s; 0.15 s under ASan)."""
    lab = handover_lab
    lab.set_callbacks(True)
    rows = [switchover(lab, f"cb{i}") for i in range(3)]
    RESULTS["callbacks"] = rows
    report_line(report, "recipe callbacks", rows)
    check_safe(rows)
    patroni = lab.stack.versions().get("Patroni", "0")
    bound = 0.15 if lab.stack.at_least("Patroni", "3.0.3") else 0.3
    assert median(rows, "up") <= bound, (patroni, [r["up"] for r in rows])
    assert max(r["b"] for r in rows) <= 1.0, [r["b"] for r in rows]
    a = statistics.median(r["windows"]["A"] for r in rows)
    b = statistics.median(r["windows"]["B"] for r in rows)
    assert b < a, f"B's failed-write window {b:.2f}s is not below A's {a:.2f}s"


@pytest.mark.needs("Patroni", "3.0.3", "before_stop")
def test_before_stop_says_stopping(handover_lab):
    """before_stop (Patroni 3.0.3+) on the old primary: its agent said `down #patroni:
    stopping` during the switchover, and ends on Patroni's own answer."""
    rows = RESULTS.get("callbacks")
    assert rows, "needs test_handover_recipe_callbacks"
    for r in rows:
        assert b"down #patroni: stopping\n" in r["old_lines"], r["old_lines"]
    assert handover_lab.sample_agents()[rows[-1]["old"]][0] == b"down #patroni /primary: 503\n"


def _silent(sock):
    """Stand-in for a firewalled agent: accepts, reads, never answers."""
    sock.recv(64)
    time.sleep(3)


def _garbage(sock):
    """Stand-in for an agent port where something else answers."""
    sock.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")


@pytest.mark.parametrize("fault", ["down", "firewalled", "garbage"])
def test_peer_that_cannot_confirm_keeps_the_timer(handover_lab, fault):
    """The third node's agent is down, firewalled or answering garbage: the candidate's
    hold runs its whole time (interval + timeout + agent-inter) after its Patroni's 200."""
    lab = handover_lab
    p = lab.wait_healthy()
    third = [n for n in hc.NODES if n != p][1]
    lab.stop_happac(third)
    standin = None
    if fault != "down":
        standin = Listener(hc.node_addr(third), hc.AGENT_PORT,
                           respond=_silent if fault == "firewalled" else _garbage).start()
    new = [n for n in hc.NODES if n not in (p, third)][0]
    released_before = lab.log_path(f"happac{new}").read_text(errors="replace").count(
        "hold released")
    try:
        watches = [Watch(lambda: hc.patroni_status(new, "/primary", "OPTIONS", 0.5), "p"),
                   Watch(lambda: hc.agent_reply(new, 0.5)[0], "a")]
        for w in watches:
            w.start()
        t_sw = time.monotonic()
        try:
            lab.switchover(p, new)
            hc.wait_for("the candidate's agent up", lambda: watches[1].first(
                lambda v: v == b"up\n", t_sw), 30, 0.05)
        finally:
            for w in watches:
                w.stop()
        t_200 = watches[0].first(lambda v: v == 200, t_sw)
        t_up = watches[1].first(lambda v: v == b"up\n", t_sw)
        held = t_up - t_200
        assert held >= ROLE_HOLD - OBS, f"{fault} peer: hold ended after {held:.2f}s"
        assert held <= ROLE_HOLD + 0.1 + 2 * OBS + 0.3, f"{fault} peer: up only after {held:.2f}s"
        if standin is not None:
            assert standin.requests >= 1, "the stand-in was never asked"
        log = lab.log_path(f"happac{new}").read_text(errors="replace")
        assert log.count("hold released") == released_before, log[-2000:]
    finally:
        if standin is not None:
            standin.stop()
        lab.start_happac(third)
    lab.wait_healthy()
