"""The packaged happac.service under a real systemd 252 (PID 1 of a booted Debian 12
container), against the real lab cluster: what an operator sees with systemctl,
journalctl, `happac ctl` and on the agent port."""

import http.client
import re
import threading
import time

import pytest

from sd_util import agent, happac_cluster as hc, recipe_env

UNIT = "happac"
WATCHDOG_S = 10
TIMEOUT_STOP_S = 10



def is_down(line, reason):
    """`down #pgbouncer ...`, also with the words happac puts before the reason
    (`down ready #pgbouncer ...` while it still says an override ended)."""
    words = line.split()
    return bool(words) and words[0] == "down" and any(w.startswith(reason) for w in words)


def main_pid(c, unit=UNIT):
    return int(c.show(unit, "MainPID")["MainPID"])


def test_start_is_active_ready_after_the_first_round(node, lab):
    c = node
    c.run(["systemctl", "stop", UNIT], timeout=30)
    before = len(c.journal(UNIT))
    # Type=notify: `systemctl start` returns once happac said READY=1.
    c.run(["systemctl", "start", UNIT], timeout=30)
    s = c.show(UNIT, "ActiveState", "SubState", "StatusText", "Type")
    # ("up ready" while happac still tells HAProxy that an override ended)
    assert s["StatusText"].split()[0] == "up", s
    del s["StatusText"]
    assert s == {"ActiveState": "active", "SubState": "running", "Type": "notify"}, s
    # ... and by then the agent port answers with a real verdict.
    assert agent(lab).startswith("up"), agent(lab)
    log = c.journal(UNIT)[before:]
    verdict = log.index("verdict none -> up")
    ready = log.index("ready: answering agent checks")
    started = log.index("Started happac.service")
    assert verdict < ready < started, log


def test_status_text_follows_the_verdict(node, lab):
    c = node
    lab.kill_pgbouncer(lab.node)
    try:
        st = c.wait("StatusText down #pgbouncer",
                    lambda: (lambda t: t if is_down(t, "#pgbouncer") else None)(
                        c.show(UNIT, "StatusText")["StatusText"]), 10)
        assert is_down(agent(lab), "#pgbouncer"), agent(lab)
        assert 'Status: "%s"' % st in c.run(["systemctl", "status", UNIT, "--no-pager"],
                                            check=False).out
    finally:
        lab.start_pgbouncer(lab.node, wait=True)
    c.wait("StatusText up again",
           lambda: c.show(UNIT, "StatusText")["StatusText"].split()[:1] == ["up"], 10)


def test_ctl_root_group_member_and_outsider(node, lab):
    c = node
    c.run(["sh", "-c", "getent passwd op >/dev/null || useradd -G happac op; "
                       "getent passwd outsider >/dev/null || useradd outsider"])
    # The shipped unit as is: /run/happac 0750 haproxy:happac, the socket 0660.
    ls = c.run(["stat", "-c", "%a %U %G %n", "/run/happac", "/run/happac/happac.sock"]).out
    assert ls.splitlines() == ["750 haproxy happac /run/happac",
                               "660 haproxy happac /run/happac/happac.sock"], ls
    try:
        for user in (None, "op"):
            r = c.run(["happac", "ctl", "drain"], user=user)
            assert r.out.startswith("ok drain"), r
            assert agent(lab).split()[:2] == ["up", "drain"], agent(lab)
            r = c.run(["happac", "ctl", "maint"], user=user)
            assert r.out.startswith("ok maint"), r
            assert "maint" in agent(lab)
            r = c.run(["happac", "ctl", "ready", "--ramp", "10s"], user=user)
            assert r.out.startswith("ok ready"), r
            words = agent(lab).split()
            assert words[0] == "up" and any(w.endswith("%") for w in words), words
            st = c.run(["happac", "ctl", "status"], user=user).out
            assert '"admin":"ready"' in st and '"ramp_ms":10000' in st, st
        # Patroni's callback as a member of the group (Patroni's own user must be one).
        r = c.run(["happac", "ctl", "probe"], user="op")
        assert r.out.strip() == "ok probe", r
        # ... and where it may not reach happac, it never fails Patroni's action.
        r = c.run(["happac", "ctl", "probe"], user="outsider", check=False)
        assert r.rc == 0 and r.out == "" and "not delivered, nothing to do" in r.err, r
        journal = c.journal(UNIT)
        op_uid = c.run(["id", "-u", "op"]).out.strip()
        assert "override: drain set by uid 0" in journal
        assert "override: drain set by uid %s" % op_uid in journal
        r = c.run(["happac", "ctl", "drain"], user="outsider", check=False)
        assert r.rc == 2 and r.out == "", r
        assert r.err.strip() == ("happac ctl: cannot connect to /run/happac/happac.sock: "
                                 "Permission denied (only root and the members of group "
                                 "happac may use it)"), r
        assert '"admin":"ready"' in c.run(["happac", "ctl", "status"]).out
    finally:
        c.run(["happac", "ctl", "ready"])


def test_override_survives_restart_and_reboot(node, lab):
    c = node
    try:
        assert c.run(["happac", "ctl", "drain"]).out.startswith("ok drain")
        c.run(["systemctl", "restart", UNIT], timeout=30)
        assert agent(lab).split()[:2] == ["up", "drain"], agent(lab)
        assert '"admin":"drain"' in c.run(["happac", "ctl", "status"]).out
        # The unit is enabled: it comes back with the machine, still drained.
        c.reboot()
        assert c.run(["systemctl", "is-active", UNIT]).out.strip() == "active"
        assert agent(lab).split()[:2] == ["up", "drain"], agent(lab)
        assert '"admin":"drain"' in c.run(["happac", "ctl", "status"]).out
        assert "override: restored drain from /var/lib/happac/state" in c.journal(UNIT)
    finally:
        c.run(["happac", "ctl", "ready"], check=False)


class Checker(threading.Thread):
    """Asks the agent port as HAProxy does, as fast as it can, until stopped."""

    def __init__(self, lab):
        super().__init__(daemon=True)
        self.lab, self.replies, self.errors = lab, 0, []
        self.halt = threading.Event()

    def run(self):
        t0 = time.monotonic()
        while not self.halt.is_set() and time.monotonic() - t0 < 120:
            reply, err = hc.agent_reply(self.lab.node, timeout=2.0)
            if reply is None or not reply.startswith(b"up"):
                self.errors.append(err or reply)
            self.replies += 1
            time.sleep(0.01)


def http_health(lab):
    """Status of GET /health on the HTTP side port, None when it is closed."""
    try:
        conn = http.client.HTTPConnection(lab.addr, 8405, timeout=2)
        conn.request("GET", "/health")
        return conn.getresponse().status
    except OSError:
        return None


def test_reload_good_and_bad_config(node, lab):
    c = node
    conf = "/etc/haproxy/happac.conf"
    env = c.run(recipe_env(lab.addr)).out + 'HAPPAC_CONFIG="%s"\n' % conf
    c.write(conf, "# happac settings\ninterval = 1s\n")
    c.write("/etc/haproxy/happac.env", env)
    c.run(["systemctl", "restart", UNIT], timeout=30)
    pid = main_pid(c)
    assert http_health(lab) is None
    checker = Checker(lab)
    checker.start()
    try:
        # A good file: takes effect (the HTTP side port opens), no check dropped.
        c.write(conf, "# happac settings\ninterval = 1s\nhttp-listen = %s:8405\n" % lab.addr)
        before = len(c.journal(UNIT))
        c.run(["systemctl", "reload", UNIT])
        c.wait("HTTP /health after the reload", lambda: http_health(lab) == 200, 10)
        assert main_pid(c) == pid
        assert "Reloaded happac.service" in c.journal(UNIT)[before:]
        # A bad one: still running on the old settings, the journal names FILE:LINE.
        c.write(conf, "# happac settings\ninterval = fast\n")
        before = len(c.journal(UNIT))
        c.run(["systemctl", "reload", UNIT])
        log = c.wait("the journal naming the bad line",
                     lambda: (lambda j: j if "%s:2" % conf in j else None)(
                         c.journal(UNIT)[before:]), 10)
        assert "fast" in log, log
        assert main_pid(c) == pid
        assert c.show(UNIT, "ActiveState")["ActiveState"] == "active"
        assert http_health(lab) == 200
    finally:
        checker.halt.set()
        checker.join(10)
        c.run(["rm", "-f", conf])
    assert checker.replies > 20 and not checker.errors, (checker.replies, checker.errors[:5])


def test_watchdog_restarts_a_stopped_happac(node):
    c = node
    pid = main_pid(c)
    c.run(["kill", "-STOP", str(pid)])
    t0 = time.monotonic()
    new = c.wait("a new happac after SIGSTOP",
                 lambda: (lambda p: p if p not in (0, pid) and
                          c.show(UNIT, "ActiveState")["ActiveState"] == "active" else None)(
                     main_pid(c)), WATCHDOG_S + 5, step=0.2)
    took = time.monotonic() - t0
    assert new != pid
    assert "Watchdog timeout" in c.journal(UNIT)
    print("watchdog: new pid after %.1fs (WatchdogSec=%ds)" % (took, WATCHDOG_S))


def test_sigkill_is_restarted(node):
    c = node
    pid = main_pid(c)
    n = int(c.show(UNIT, "NRestarts")["NRestarts"])
    c.run(["kill", "-KILL", str(pid)])
    c.wait("restarted after SIGKILL",
           lambda: main_pid(c) not in (0, pid) and
           c.show(UNIT, "ActiveState")["ActiveState"] == "active", 10)
    assert int(c.show(UNIT, "NRestarts")["NRestarts"]) == n + 1


def test_bad_env_file_is_not_restarted_in_a_loop(node, lab):
    c = node
    env = c.run(recipe_env(lab.addr)).out
    c.write("/etc/haproxy/happac.env", env.replace('PGISREADY_PORT="6432"',
                                                   'PGISREADY_PORT="sixtyfour"'))
    before = len(c.journal(UNIT))
    r = c.run(["systemctl", "restart", UNIT], check=False, timeout=30)
    assert r.rc != 0
    s = c.show(UNIT, "ActiveState", "Result", "ExecMainStatus", "NRestarts")
    assert s["ActiveState"] == "failed" and s["ExecMainStatus"] == "2", s
    # RestartSec=1s: a loop would have restarted it by now, three times over.
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3.5:
        assert c.show(UNIT, "NRestarts", "ActiveState") == {
            "NRestarts": s["NRestarts"], "ActiveState": "failed"}
        time.sleep(0.25)
    log = c.journal(UNIT)[before:]
    assert "'sixtyfour'" in log, log
    c.write("/etc/haproxy/happac.env", env)


def test_stop_is_clean(node, lab):
    c = node
    t0 = time.monotonic()
    c.run(["systemctl", "stop", UNIT], timeout=TIMEOUT_STOP_S + 5)
    took = time.monotonic() - t0
    assert took < TIMEOUT_STOP_S, took
    s = c.show(UNIT, "ActiveState", "Result", "ExecMainStatus", "MainPID")
    assert s == {"ActiveState": "inactive", "Result": "success", "ExecMainStatus": "0",
                 "MainPID": "0"}, s
    # Nothing left behind: no process, no runtime directory, the port closed.
    assert c.run(["pgrep", "-x", "happac"], check=False).rc == 1
    assert c.run(["test", "-e", "/run/happac"], check=False).rc == 1
    assert agent(lab).startswith("error"), agent(lab)
    assert c.run(["test", "-d", "/var/lib/happac"], check=False).rc == 0


def test_instances_side_by_side(node, lab):
    c = node
    env = c.run(recipe_env(lab.addr) + ["-p", "5556", "-k", "replica"]).out
    c.write("/etc/haproxy/happac-replica.env", env)
    try:
        c.run(["systemctl", "start", "happac@replica"], timeout=30)
        for u in (UNIT, "happac@replica"):
            assert c.show(u, "ActiveState")["ActiveState"] == "active", u
        # Each its own socket and state file; an override on one is not on the other.
        sock = "/run/happac-replica/happac.sock"
        assert c.run(["happac", "ctl", "--socket", sock, "drain"]).out.startswith("ok drain")
        assert '"admin":"ready"' in c.run(["happac", "ctl", "status"]).out
        st = c.run(["happac", "ctl", "--socket", sock, "status"]).out
        assert '"admin":"drain"' in st and "/var/lib/happac/replica/state" in st, st
        assert agent(lab).startswith("up") and "drain" not in agent(lab)
        # Stopping the instance leaves the main unit's socket alone.
        c.run(["systemctl", "stop", "happac@replica"], timeout=30)
        assert c.run(["happac", "ctl", "status"]).rc == 0
        assert c.run(["test", "-e", "/run/happac-replica"], check=False).rc == 1
    finally:
        c.run(["systemctl", "stop", "happac@replica"], check=False, timeout=30)


@pytest.mark.parametrize("unit", ["happac.service", "happac@replica.service"])
def test_security_exposure(node, unit):
    r = node.run(["systemd-analyze", "security", "--no-pager", unit], check=False)
    m = re.search(r"Overall exposure level for %s: (\d+\.\d+)" % re.escape(unit), r.out)
    assert m, r
    print("systemd-analyze security %s: %s" % (unit, m.group(1)))
    assert float(m.group(1)) <= 2.0, r.out
