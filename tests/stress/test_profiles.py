"""Hostile clients when happac serves several profiles (here: -k primary plus
--profile replica on the same port). Then the agent no longer answers at
accept: it waits up to --agent-send-wait (50 ms) for the checker to name a
profile (HAProxy `agent-send "replica\\n"`), holding the connection, at most
--max-connections (256) of them; when full, the connection silent longest
is answered (with the listener's profile) to make room.

The well-behaved checker here sends its profile line like HAProxy's
agent-send ("replica\\n", not the listener's default), so it is answered as
soon as its line arrives, and a wrong profile's reply would show.

happac runs with RLIMIT_NOFILE 1024, the soft limit systemd gives a service
that does not set LimitNOFILE (see test_http_side_port.py).
"""

import resource

import stresslib as sl

NOFILE_SERVICE = 1024
WAIT_MS = 50          # --agent-send-wait default
FD_RESERVE = 64       # what the probes, HTTP and logs need beside held checks


def _service_limits():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE_SERVICE, hard))


def _start(happac):
    h = happac("--profile", "replica", preexec_fn=_service_limits)
    sl.wait_line(lambda r: r == b"up\n", 5, "up (primary profile)")
    return h


def test_silent_clients_cannot_exhaust_fds(workdir, happac):
    """5,000 clients that connect and never send nor read. Each may be held
    for the agent-send wait, but the cap on waiting connections must keep
    happac inside its fd budget with room to spare: the probes keep their
    sockets (the verdict stays `up`), the agent keeps accepting, and a
    normal check is answered within 10 ms (with STRESS_TIMING=1: every one,
    p99 <= 5 ms; stresslib.LAT_*)."""
    h = _start(happac)
    idle = h.fds()
    n_verdicts = len(h.verdicts())
    # The checker names the profile that is NOT the listener's default: a
    # check answered without its line read (over the cap) would get the
    # default's "up" instead of the replica profile's "down".
    checker = sl.start_checker(workdir, 600, 5, send="replica\n")
    # Opened at 5,000/s (1 s), the rate of test_flood's bounded test: a
    # burst at the client's full speed is a connection-rate flood, which
    # queues any one-core server (test_flood.test_10k_connection_burst).
    flood = sl.start_flood(workdir, "hold", 5000, hold=3.0,
                           extra=["--hold-open", "--rate", "5000"])
    peak = sl.peak_fds(h, (flood, checker), 0.005)
    fres = sl.finish_json(flood, 60)
    cres = sl.finish_json(checker, 60)
    lat = sl.summarize_latency(cres)
    changes = [v for _, v in h.verdicts()[n_verdicts:]]
    sl.report("profiles-silent-flood", flood=fres["counts"], flood_end_ms_max=fres["outcome_ms_max"],
              checks=lat, lines=cres["lines"], idle_fds=idle, peak_fds=peak, verdicts=changes)
    assert h.alive(), h.log()[-3000:]
    problems = []
    # happac raises its soft limit to the hard one (systemd: 1024:524288);
    # within that, waiting connections stay under half of it.
    limit = h.nofile()
    if limit <= NOFILE_SERVICE:
        problems.append("happac kept the soft limit of %d: it should raise it" % limit)
    if peak > min(limit, NOFILE_SERVICE + 2 * 1024) - FD_RESERVE:
        problems.append("fds peaked at %d of %d (max-connections does not leave the probes "
                        "room)" % (peak, limit))
    if changes:
        problems.append("the verdict changed under a client flood: %s" % changes)
    wrong = {line: n for line, n in cres["lines"].items() if not line.startswith("down ")}
    if wrong:
        problems.append("replica checks answered with another profile's line: %s" % wrong)
    if sl.latency_problems(lat):
        problems.append("normal checks: %s" % "; ".join(sl.latency_problems(lat)))
    if fres["counts"].get("open", 0):
        problems.append("%d silent clients never answered" % fres["counts"]["open"])
    if "Too many open files" in h.log():
        problems.append("accept ran out of fds (EMFILE)")
    assert not problems, "; ".join(problems)


def test_agent_send_wait_is_a_deadline(workdir, happac):
    """A checker that trickles its agent-send line (one byte every 40 ms,
    less than the 50 ms wait) must still be answered once the wait has
    passed since it connected: the wait bounds how long a connection is
    held, and a trickle must not renew it."""
    h = _start(happac)
    flood = sl.start_flood(workdir, "slowloris", 50, hold=5.0,
                           extra=["--slow-interval", "0.04"])
    fres = sl.finish_json(flood, 60)
    sl.report("profiles-trickle", flood=fres)
    assert h.alive()
    assert fres["counts"].get("open", 0) == 0, fres
    bound = WAIT_MS + 100  # + slack for a busy 2-core box
    assert fres["outcome_ms_max"] <= bound, (
        "trickling clients held %.0f ms, want <= %d ms (agent-send wait %d ms): the wait "
        "restarts with every byte" % (fres["outcome_ms_max"], bound, WAIT_MS))
