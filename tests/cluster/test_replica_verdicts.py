"""Replica verdicts that mean it (issue 15), on the real cluster of the stack under test.

- Streaming cut (walsenders terminated, replication logins refused on the primary): the
  replica profiles say `down #replica not streaming (...)` within interval + timeout of
  the cut becoming visible, and `up` again after the repair, with no flapping between.
  Through --pg-conninfo happac asks pg_stat_wal_receiver on every stack; from Patroni's
  JSON alone it can know only where Patroni reports replication_state (3.0.4+): on
  Patroni 3.0.2 the test asserts the documented "cannot know" (one log line, /status).
- Lag hold-down: a lag spike shorter than lag-hold does not cut, a longer one does, and
  the return waits for lag-full held as long.
- synchronous_mode + failsafe_mode: the sync profile follows a switchover; with etcd
  stopped the primary stays up and the sync profile says what the README says.
- `patronictl pause`: verdicts unchanged, /status and the log say paused.
- A standby cluster: standby-leader up on its leader, down elsewhere, down when it stops
  replicating.

Extra happacs run on the node addresses, ports 5571-5573, with --haproxy-agent-inter
500ms so that the hold on a role (and on streaming again) is I + T + 0.5 s.
"""

import json
import threading
import time

import psycopg2
import pytest

import happac_cluster as hc
from agentcheck import talk  # tests/lib

I, T = hc.HAPPAC_INTERVAL, hc.HAPPAC_TIMEOUT
AGENT_INTER = 0.5
HOLD = I + T + AGENT_INTER       # happac's hold on a role / on streaming again
DETECT = I + T + 0.4             # a change reaches the reply (+ one poll)
PING, ROUTE, HTTP = 5571, 5572, 5573
CONNINFO = "dbname=postgres user=postgres"
LAG_HOLD = 5.0                   # the default lag-hold
STANDBY = 4                      # the standby cluster's node: 127.0.0.14
PATRONI_SETTLES = 30


def sql(n, query, port=hc.PG_PORT):
    conn = psycopg2.connect(host=hc.node_addr(n), port=port, dbname="postgres",
                            user=hc.POSTGRES_USER, connect_timeout=3)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(query)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def ask(n, port, send=None):
    try:
        return talk((hc.node_addr(n), port), send and send.encode() + b"\n", 2.0,
                    cap=512)[0].decode()
    except OSError as e:
        return f"error {e}"


def get_json(n, port, path):
    """The JSON body of GET path on node n's port (HTTP/1.0: the server closes)."""
    raw = talk((hc.node_addr(n), port), f"GET {path} HTTP/1.0\r\n\r\n".encode(), 2.0)[0]
    return json.loads(raw.split(b"\r\n\r\n", 1)[1])


def status(n):
    return get_json(n, HTTP, "/status")


def patroni_json(n):
    return get_json(n, hc.PATRONI_PORT, "/patroni")


def reports_replication_state(lab):
    return lab.stack.at_least("Patroni", "3.0.4")


def changes(samples, t0):
    """Each change of reply in samples [(t, reply)] from t0 on, as 'seconds: reply'."""
    out, last = [], None
    for t, r in samples:
        if t >= t0 and r != last:
            out.append(f"{t - t0:.2f}s: {r!r}")
            last = r
    return out


def words(samples):
    """The run of up/down words in samples [(t, reply)], repeats folded."""
    out = []
    for _, r in samples:
        w = r.split(" ", 1)[0].strip()
        if not out or out[-1] != w:
            out.append(w)
    return out


@pytest.fixture
def agents(lab):
    """start(n, name, port, *args): one more happac on node n; stopped afterwards."""
    started = []

    def start(n, name, port, *args):
        addr = hc.node_addr(n)
        lab._spawn(name, [lab.happac_bin, "-h", addr, "-r", hc.PGBOUNCER_PORT,
                          "-o", hc.PATRONI_PORT, "-p", port, "--listen", addr,
                          "--interval", f"{int(I * 1000)}ms", "--timeout", f"{int(T * 1000)}ms",
                          "--haproxy-agent-inter", f"{int(AGENT_INTER * 1000)}ms"]
                   + [str(a) for a in args])
        started.append(name)
        hc.wait_for(f"{name} answers", lambda: ask(n, port).startswith(("up", "down")), 10)
    yield start
    for name in started:
        lab._terminate(name, timeout=5)


class Replies(threading.Thread):
    """Every 0.1 s, the reply of each (node, port, agent-send) target: samples[target]."""

    def __init__(self, targets, max_seconds=120):
        super().__init__(daemon=True)
        self.targets, self.max_seconds = targets, max_seconds
        self.samples = {t: [] for t in targets}
        self._halt = threading.Event()

    def run(self):
        t0 = time.monotonic()
        while not self._halt.is_set() and time.monotonic() - t0 < self.max_seconds:
            for t in self.targets:
                self.samples[t].append((time.monotonic(), ask(*t)))
            self._halt.wait(0.1)

    def stop(self):
        self._halt.set()
        self.join(10)

    def first(self, target, pred, after=0.0):
        return next((t for t, r in self.samples[target] if t >= after and pred(r)), None)


def cut_replication(primary):
    """Refuse replication logins on the primary and end its walsenders."""
    sql(primary, "ALTER ROLE replicator NOREPLICATION")
    sql(primary, "SELECT pg_terminate_backend(pid) FROM pg_stat_replication")


def restore_replication(primary):
    sql(primary, "ALTER ROLE replicator REPLICATION")


def receiver_streams(n):
    rows = sql(n, "SELECT status FROM pg_stat_wal_receiver")
    return bool(rows) and rows[0][0] == "streaming"


def log_count(lab, name, text):
    return lab.log_path(name).read_text(errors="replace").count(text)


def test_streaming_cut_replica_down_and_back(lab, agents):
    """Replication cut on the primary: both replicas' replica profiles go down naming
    streaming within I + T of the cut being visible (routing: in pg_stat_wal_receiver;
    ping mode: in Patroni's replication_state, 3.0.4+), stay down, and come back once
    replication logins work again: one down and one up each, nothing in between."""
    p = lab.wait_healthy(timeout=120)
    replicas = [n for n in hc.NODES if n != p]
    knows = reports_replication_state(lab)
    for r in replicas:
        agents(r, f"happac-ping{r}", PING, "-k", "replica", "--http-listen",
               f"{hc.node_addr(r)}:{HTTP}")
        agents(r, f"happac-route{r}", ROUTE, "-k", "replica", "--pg-conninfo", CONNINFO)
    for r in replicas:
        for port in (PING, ROUTE):
            hc.wait_for(f"node{r}:{port} up", lambda: ask(r, port) == "up\n", DETECT + 5)
        st = hc.wait_for(f"node{r} /status shows streaming knowledge",
                         lambda: status(r)["cluster"]["streaming"] != "n/a" and status(r), 10)
        if knows:
            assert st["cluster"]["streaming"] == "streaming", st["cluster"]
        else:
            # Patroni 3.0.2: cannot know in ping mode. Said once in the log and /status.
            assert st["cluster"]["streaming"] == "unknown", st["cluster"]
            assert "reports no replication_state" in st["cluster"]["streaming_evidence"]
            assert log_count(lab, f"happac-ping{r}", "cannot tell whether this replica "
                             "streams") == 1
    targets = [(r, port) for r in replicas for port in (PING, ROUTE)]
    rec = Replies(targets)
    rec.start()
    seen_pg, seen_patroni = {}, {}
    try:
        time.sleep(1.0)   # some "up" samples before the cut
        t_cut = time.monotonic()
        cut_replication(p)

        def visible():
            for r in replicas:
                if r not in seen_pg and not receiver_streams(r):
                    seen_pg[r] = time.monotonic()
                if r not in seen_patroni and "replication_state" not in patroni_json(r):
                    seen_patroni[r] = time.monotonic()
            want_down = [(r, ROUTE) for r in replicas] + ([(r, PING) for r in replicas]
                                                         if knows else [])
            return (len(seen_pg) == 2 and all(ask(*t).startswith("down") for t in want_down)
                    or hc.Pending((seen_pg, seen_patroni)))
        hc.wait_for("the cut seen and said", visible, 20, 0.05)
        time.sleep(6.0)   # a walreceiver retry (wal_retrieve_retry_interval 5 s) fails too
        for r in replicas:
            assert ask(r, ROUTE) == "down #replica not streaming (pg_stat_wal_receiver)\n"
            if knows:
                assert ask(r, PING) == ("down #replica not streaming "
                                        "(patroni: no replication_state)\n")
                assert status(r)["cluster"]["streaming"] == "not streaming"
            else:
                assert ask(r, PING) == "up\n"   # documented: cannot know, never pretends
                assert status(r)["cluster"]["streaming"] == "unknown"
        t_restore = time.monotonic()
        restore_replication(p)
        hc.wait_for("every replica profile up again",
                    lambda: all(ask(*t) == "up\n" for t in targets), 5 + HOLD + DETECT + 10)
        t_up = time.monotonic()
        time.sleep(1.0)
    finally:
        restore_replication(p)
        rec.stop()
    for r in replicas:
        d = rec.first((r, ROUTE), lambda x: x.startswith("down")) - seen_pg[r]
        print(f"node{r}: routing down {d:.2f}s after pg_stat_wal_receiver showed the cut "
              f"({seen_pg[r] - t_cut:.2f}s after it); all up {t_up - t_restore:.2f}s "
              "after the repair")
        assert d <= DETECT, (r, d)
        assert words(rec.samples[(r, ROUTE)]) == ["up", "down", "up"], rec.samples[(r, ROUTE)]
        if knows:
            d = rec.first((r, PING), lambda x: x.startswith("down")) - seen_patroni[r]
            print(f"node{r}: ping mode down {d:.2f}s after Patroni dropped replication_state")
            assert d <= DETECT, (r, d)
            assert words(rec.samples[(r, PING)]) == ["up", "down", "up"]
        else:
            assert words(rec.samples[(r, PING)]) == ["up"]
            assert log_count(lab, f"happac-ping{r}", "cannot tell whether this replica "
                             "streams") == 1
    # Patroni's own /replica stayed 200 all along: the verdict is happac's
    assert all(hc.patroni_status(r, "/replica") == 200 for r in replicas)


class LagWriter(threading.Thread):
    """WAL on the primary, about 100 kB per statement, until stopped (bounded)."""

    def __init__(self, primary, max_seconds=60):
        super().__init__(daemon=True)
        self.primary, self.max_seconds = primary, max_seconds
        self._halt = threading.Event()
        self.errors = []

    def run(self):
        conn = psycopg2.connect(host=hc.node_addr(self.primary), port=hc.PG_PORT,
                                dbname="postgres", user=hc.POSTGRES_USER, connect_timeout=3)
        conn.autocommit = True
        t0 = time.monotonic()
        try:
            with conn.cursor() as cur:
                while not self._halt.is_set() and time.monotonic() - t0 < self.max_seconds:
                    cur.execute("INSERT INTO happac_lagw SELECT g, repeat('x', 100) "
                                "FROM generate_series(1, 500) g")
                    self._halt.wait(0.1)
        except psycopg2.Error as e:
            self.errors.append(str(e))
        finally:
            conn.close()

    def stop(self):
        self._halt.set()
        self.join(10)


def hold_replay(p, r, seconds):
    """Replay on r blocked for `seconds` by a recovery conflict (Patroni resumes a
    pg_wal_replay_pause() within a second): a transaction on r holds a lock that the
    primary's TRUNCATE needs. Returns the monotonic time the replay was let go."""
    holder = psycopg2.connect(host=hc.node_addr(r), port=hc.PG_PORT, dbname="postgres",
                              user=hc.POSTGRES_USER, connect_timeout=3)
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT * FROM happac_lock")
        sql(p, "TRUNCATE happac_lock")
        time.sleep(seconds)
    finally:
        holder.rollback()
        holder.close()
    return time.monotonic()


def test_lag_hold_down(lab, agents):
    """Under writes, replay held 2 s does not cut (lag-hold 5 s); held 10 s it cuts after
    the lag stayed at or above lag-cut for lag-hold, and the return waits lag-hold at
    lag-full."""
    p = lab.wait_healthy(timeout=120)
    r = next(n for n in hc.NODES if n != p)
    conf = lab.node_dir(r) / "lag-hold.conf"
    conf.write_text("[profile replica]\nrule = replica\nlag-full = 64kB\nlag-cut = 256kB\n"
                    "[profile lagtime]\nrule = replica\nlag-full-time = 500ms\n"
                    "lag-cut-time = 1s\n")
    conf.chmod(0o644)
    agents(r, f"happac-lag{r}", ROUTE, "-k", "replica", "-c", conf, "--pg-conninfo", CONNINFO)
    hc.wait_for("up 100%", lambda: ask(r, ROUTE) == "up 100%\n", DETECT + 5)
    sql(p, "DROP TABLE IF EXISTS happac_lagw; DROP TABLE IF EXISTS happac_lock; "
           "CREATE TABLE happac_lock (x int); CREATE TABLE happac_lagw (g int, pad text)")
    hc.wait_for("tables replicated",
                lambda: sql(r, "SELECT to_regclass('happac_lock') IS NOT NULL")[0][0], 10)
    # Idle: the last replayed commit gets older than lag-cut-time for longer than
    # lag-hold, yet nothing is missing; the lag in time stays 0 all along. Bounded
    # on the age itself: a commit on the primary (autovacuum's ANALYZE of a table
    # an earlier test wrote) starts the age again.
    idle_deadline = time.monotonic() + 40
    while True:
        assert ask(r, ROUTE, "lagtime") == "up 100%\n"
        age = float(sql(r, "SELECT extract(epoch FROM now() - "
                           "pg_last_xact_replay_timestamp())")[0][0])
        if age > 1.0 + LAG_HOLD:   # lag-cut-time + lag-hold
            break
        assert time.monotonic() < idle_deadline, f"no idle primary for 40 s: age {age}"
        time.sleep(0.2)
    rec = Replies([(r, ROUTE), (r, ROUTE, "lagtime")])
    writer = LagWriter(p)
    rec.start()
    writer.start()
    try:
        t_short = time.monotonic()
        hold_replay(p, r, 2.0)
        hc.wait_for("back at 100% after the short spike",
                    lambda: ask(r, ROUTE) == "up 100%\n", 10)
        time.sleep(LAG_HOLD)   # a cut would have come by now
        short = [x for t, x in rec.samples[(r, ROUTE)] if t >= t_short]
        assert not [x for x in short if x.startswith("down")], short
        assert "up 1%\n" in short, f"the spike never reached lag-cut: {short}"

        t_long = time.monotonic()
        released = hold_replay(p, r, 10.0)
        writer.stop()
        hc.wait_for("up 100% again", lambda: ask(r, ROUTE) == "up 100%\n", LAG_HOLD + 10)
        # ... and the recorder has sampled it too (it asks every 0.1 s).
        hc.wait_for("the recorder's latest sample up 100%",
                    lambda: rec.samples[(r, ROUTE)][-1][1] == "up 100%\n", 5)
    finally:
        writer.stop()
        rec.stop()
        sql(p, "DROP TABLE IF EXISTS happac_lagw; DROP TABLE IF EXISTS happac_lock")
    assert not writer.errors, writer.errors
    seen = changes(rec.samples[(r, ROUTE)], t_long)
    over = rec.first((r, ROUTE), lambda x: x == "up 1%\n", t_long)
    assert over is not None, f"the long spike never reached lag-cut: {seen}"
    down = rec.first((r, ROUTE), lambda x: x.startswith("down"), t_long)
    assert down is not None, f"the long spike never cut: {seen}"
    up = rec.first((r, ROUTE), lambda x: x.startswith("up"), down)
    assert up is not None, f"never up again after the long spike: {seen}"
    print(f"long spike: at lag-cut {over - t_long:.2f}s in, down {down - over:.2f}s later; "
          f"up {up - released:.2f}s after replay was let go")
    assert down is not None and down - over >= LAG_HOLD - I, (over, down)
    assert down - over <= LAG_HOLD + DETECT, (over, down)
    assert rec.samples[(r, ROUTE)][-1][1] == "up 100%\n"
    cut = [x for t, x in rec.samples[(r, ROUTE)] if down <= t < up]
    assert all(x.startswith("down #replication lag ") and x.endswith("(cut at 256kB)\n")
               for x in cut), cut
    # back only after lag-full held for lag-hold (the lag is gone within a round)
    assert up - released >= LAG_HOLD - I, (released, up)
    assert words(rec.samples[(r, ROUTE)]) == ["up", "down", "up"]
    # the lag in time: the same hold-down, named in seconds
    tdown = rec.first((r, ROUTE, "lagtime"), lambda x: x.startswith("down"), t_long)
    assert tdown is not None and tdown - t_long >= LAG_HOLD, (t_long, tdown)
    assert words(rec.samples[(r, ROUTE, "lagtime")]) == ["up", "down", "up"]
    assert any(x.startswith("down #replication lag ") and x.endswith("s (cut at 1.0s)\n")
               for _, x in rec.samples[(r, ROUTE, "lagtime")])


def sync_nodes():
    return [n for n in hc.NODES if hc.patroni_status(n, "/sync") == 200]


def one_sync(exclude=None):
    s = sync_nodes()
    return s[0] if len(s) == 1 and s[0] != exclude else None


def test_standby_leader_streams(lab, agents):
    """A standby cluster (second Patroni scope) replicating from the primary: the
    standby-leader profile is up on its leader; when the source refuses replication it
    says down naming streaming (routing mode everywhere; from Patroni's JSON where
    Patroni reports replication_state), and up again after the repair."""
    p = lab.wait_healthy(timeout=120)
    n = STANDBY
    knows = reports_replication_state(lab)
    try:
        # A scope of its own: a standby cluster started earlier in the session
        # (test_patroni_modes) left its configuration in etcd, with that time's
        # primary as the source, which bootstrap settings do not replace.
        lab.start_standby_cluster(n, (hc.node_addr(p), hc.PG_PORT),
                                  scope=hc.SCOPE + "-standby-streams")
        hc.wait_for("Patroni on node4: /standby-leader 200",
                    lambda: (hc.patroni_status(n, "/standby-leader") == 200
                             or (not lab.running(f"patroni{n}")
                                 and pytest.fail(lab.tail(f"patroni{n}", 40)))), 90, 0.2)
        lab.wait_pgbouncer(n)
        agents(n, "happac-sl-route", ROUTE, "-k", "standby-leader", "--pg-conninfo", CONNINFO)
        agents(n, "happac-sl-ping", PING, "-k", "standby-leader", "--profile", "replica",
               "--http-listen", f"{hc.node_addr(n)}:{HTTP}")
        hc.wait_for("standby-leader up", lambda: ask(n, ROUTE) == "up\n" and ask(n, PING) == "up\n",
                    HOLD + DETECT + 5)
        assert ask(n, PING, "replica").startswith("down #patroni: not replica (standby leader")
        rec = Replies([(n, ROUTE), (n, PING)])
        rec.start()
        try:
            cut_replication(p)

            def cut_visible():
                # A walsender not yet listed when the cut ended the others keeps
                # streaming (NOREPLICATION only refuses new logins): end it too,
                # on every node (the role change replicates; a standby leader
                # whose data directory an earlier standby left may follow
                # another node than its configured source).
                if receiver_streams(n):
                    for m in hc.NODES:
                        sql(m, "SELECT pg_terminate_backend(pid) FROM pg_stat_replication")
                    return hc.Pending(sql(n, "SELECT sender_host, status "
                                             "FROM pg_stat_wal_receiver"))
                return True
            hc.wait_for("the cut visible on node4", cut_visible, 15, 0.5)
            want = "down #standby leader not streaming (pg_stat_wal_receiver)\n"
            hc.wait_for("standby leader down (routing)",
                        lambda: (r := ask(n, ROUTE)) == want or hc.Pending(
                            (r, sql(n, "SELECT status FROM pg_stat_wal_receiver"))),
                        DETECT + 1)
            if knows:
                hc.wait_for("standby leader down (Patroni)",
                            lambda: ask(n, PING) == ("down #standby leader not streaming "
                                                     "(patroni: no replication_state)\n"), 15)
            else:
                assert ask(n, PING) == "up\n"
                assert status(n)["cluster"]["streaming"] == "unknown"
            assert hc.patroni_status(n, "/standby-leader") == 200   # Patroni: still fine
            restore_replication(p)
            hc.wait_for("standby leader up again",
                        lambda: ask(n, ROUTE) == "up\n" and ask(n, PING) == "up\n",
                        5 + HOLD + DETECT + 10)
            # ... and the recorder has sampled it too (it asks every 0.1 s).
            hc.wait_for("the recorder's latest samples up",
                        lambda: all(rec.samples[t] and rec.samples[t][-1][1] == "up\n"
                                    for t in rec.targets), 5)
        finally:
            restore_replication(p)
            rec.stop()
        for target, want in (((n, ROUTE), ["up", "down", "up"]),
                             ((n, PING), ["up", "down", "up"] if knows else ["up"])):
            seen = rec.samples[target]
            assert words(seen) == want, (target, [x for _, x in seen if not x.startswith("up")])
    finally:
        lab.stop_node(n)


def test_sync_switchover_failsafe_and_pause(lab, agents):
    """synchronous_mode and failsafe_mode on: the sync profile follows the sync standby
    through a switchover; etcd stopped ~20 s: Patroni keeps the primary (failsafe), the
    primary's happac says up throughout, and the sync profile says down while Patroni
    shows no sync state (README: DCS outage), up again after; then `patronictl pause`:
    every verdict unchanged, /status and the log say paused."""
    p = lab.wait_healthy(timeout=120)
    for n in hc.NODES:
        agents(n, f"happac-json{n}", PING, "-k", "health", "--profile", "sync",
               "--profile", "primary", "--profile", "replica", "--profile", "standby-leader",
               "--http-listen", f"{hc.node_addr(n)}:{HTTP}")

    def agree(what, timeout):
        def check():
            bad = []
            for n in hc.NODES:
                for prof, path in (("sync", "/sync"), ("primary", "/primary")):
                    want = "up" if hc.patroni_status(n, path) == 200 else "down"
                    got = ask(n, PING, prof)
                    if not got.startswith(want):
                        bad.append(f"node{n} {prof}: {got!r}, Patroni {want}")
            return not bad or hc.Pending(bad)
        hc.wait_for(what, check, timeout)

    try:
        lab.edit_config("synchronous_mode=true", "failsafe_mode=true")
        s = hc.wait_for("one sync standby", one_sync, PATRONI_SETTLES)
        agree(f"happac's sync follows node{s}", HOLD + DETECT + 2)
        assert ask(s, PING, "sync") == "up\n"
        # switchover to the sync standby: Patroni picks another one
        lab.switchover(p, s)
        hc.wait_for(f"node{s} primary", lambda: lab.primary() == s, PATRONI_SETTLES)
        s2 = hc.wait_for("a new sync standby", lambda: one_sync(exclude=s), PATRONI_SETTLES * 2)
        t0 = time.monotonic()
        agree(f"happac's sync follows node{s2}", HOLD + DETECT + 2)
        print(f"sync standby node{s}->node{s2} after the switchover: happac followed in "
              f"{time.monotonic() - t0:.2f}s")
        p = lab.wait_healthy(timeout=60)
        assert p == s

        # etcd stopped: failsafe keeps the primary -- once the leader has written
        # the failsafe topology (every member) to etcd: Patroni asks exactly those
        # members when the DCS is gone, and a switchover just before may not have
        # had its leader write it yet.
        names = {hc.node_name(n) for n in hc.NODES}

        def topology():
            fs = get_json(p, hc.PATRONI_PORT, "/failsafe")
            return set(fs) == names or hc.Pending(fs)
        hc.wait_for("the failsafe topology in etcd", topology, PATRONI_SETTLES)
        rec = Replies([(p, hc.AGENT_PORT), (p, PING, "primary"), (s2, PING, "sync")])
        rec.start()
        t_stop = time.monotonic()
        lab.stop_etcd()
        try:
            hc.wait_for("Patroni: failsafe active on the primary",
                        lambda: patroni_json(p).get("failsafe_mode_is_active"), 25)
            t_fs = time.monotonic()
            hc.wait_for("happac /status: failsafe", lambda: status(p)["cluster"]["failsafe_active"],
                        DETECT + 1)
            hc.wait_for("Patroni: no sync standby without the DCS", lambda: not sync_nodes(), 25)
            hc.wait_for("happac's sync down with Patroni's",
                        lambda: ask(s2, PING, "sync").startswith("down"), DETECT + 1)
            sync_reply = ask(s2, PING, "sync")
            # stay ~20 s without etcd in all
            time.sleep(max(0.0, 20 - (time.monotonic() - t_stop)))
            assert hc.patroni_status(p, "/primary") == 200
        finally:
            lab.start_etcd()
        s3 = hc.wait_for("a sync standby again", one_sync, PATRONI_SETTLES)
        agree(f"happac's sync follows node{s3} once etcd is back", HOLD + DETECT + 2)
        rec.stop()
        print(f"etcd stopped {t_fs - t_stop:.1f}s before failsafe showed; "
              f"sync profile during the outage: {sync_reply!r}")
        assert sync_reply == ("down #patroni: not sync (replica, running, sync state unknown: "
                              "no leader or no DCS)\n"), sync_reply
        for target in [(p, hc.AGENT_PORT), (p, PING, "primary")]:
            assert words(rec.samples[target]) == ["up"], (target, rec.samples[target][-20:])
        assert log_count(lab, f"happac-json{p}", "failsafe mode active") == 1

        # pause: verdicts unchanged
        def snapshot():
            return {(n, prof): ask(n, PING, prof) for n in hc.NODES
                    for prof in ("sync", "primary", "replica", "standby-leader")}
        last = [snapshot()]

        def settled():
            # The reasons settle a round or two after the DCS is back (a sync
            # standby's "sync state unknown" first): two equal snapshots.
            now, last[0] = snapshot(), last[0]
            same = now == last[0]
            last[0] = now
            return now if same else hc.Pending(now)
        before = hc.wait_for("settled lines before the pause", settled, 15, 2 * I)
        r = lab.patronictl("pause", "--wait")
        assert r.returncode == 0, r.stdout + r.stderr
        hc.wait_for("every /status paused",
                    lambda: all(status(n)["cluster"]["paused"] for n in hc.NODES), DETECT + 3)
        time.sleep(2 * I)
        during = {k: ask(k[0], PING, k[1]) for k in before}
        # The verdicts, not Patroni's words in the reasons (a sync standby's
        # reason names what its JSON shows, which pausing changes).
        assert ({k: v.split("#")[0] for k, v in during.items()}
                == {k: v.split("#")[0] for k, v in before.items()}), (before, during)
        for n in hc.NODES:
            assert log_count(lab, f"happac-json{n}", "cluster paused (maintenance mode)") == 1
        r = lab.patronictl("resume", "--wait")
        assert r.returncode == 0, r.stdout + r.stderr
        hc.wait_for("every /status not paused",
                    lambda: not any(status(n)["cluster"]["paused"] for n in hc.NODES), DETECT + 3)
        assert all(log_count(lab, f"happac-json{n}", "cluster resumed") == 1 for n in hc.NODES)
        # the standby-leader profile is down on every node of a normal cluster
        assert all(ask(n, PING, "standby-leader").startswith("down") for n in hc.NODES)
    finally:
        if not lab.running("etcd"):
            lab.start_etcd()
        lab.patronictl("resume", "--wait")
        lab.edit_config("synchronous_mode=false", "failsafe_mode=false")
    lab.wait_healthy(timeout=90)
