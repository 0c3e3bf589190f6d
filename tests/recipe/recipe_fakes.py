"""Stand-ins for one cluster node, just enough to see where HAProxy routes.

A FakeNode listens on its own loopback address with the ports the recipe
was generated for: PgBouncer and PostgreSQL (each sends a banner naming node
and service, so a client through HAProxy sees where it landed), Patroni's
REST API (tests/lib/standin.py: 200/503 by role), and two agents that
answer like happac's primary and replica profiles. The HAProxy side is real:
these fakes exist to prove the generated routing (agent words, nbsrv()
fallbacks, the read listener), not happac's probes, which the integration
and cluster tests cover with the real servers.
"""

import socket
import time

from standin import Listener, PatroniStandin


def _family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def ports_free(addrs, ports):
    for addr in addrs:
        for port in ports:
            s = socket.socket(_family(addr), socket.SOCK_STREAM)
            try:
                s.bind((addr, port))
            except OSError:
                return False
            finally:
                s.close()
    return True


def pick_ports(addrs, count):
    """count port numbers free on every address in addrs (same numbers on all:
    a recipe has one port per service for all nodes)."""
    for _ in range(200):
        chosen = []
        socks = []
        try:
            for _ in range(count):
                s = socket.socket(_family(addrs[0]), socket.SOCK_STREAM)
                s.bind((addrs[0], 0))
                socks.append(s)
                chosen.append(s.getsockname()[1])
        finally:
            for s in socks:
                s.close()
        if len(set(chosen)) == count and ports_free(addrs, chosen):
            return chosen
    raise RuntimeError("no free ports on %s" % addrs)


def _banner(text):
    def respond(conn):
        conn.sendall(text.encode() + b"\n")
    return respond


class FakeNode:
    """role: 'primary' or 'replica'; pgbouncer_up: PgBouncer listening."""

    def __init__(self, name, addr, ports, role):
        self.name, self.addr, self._role = name, addr, role
        self.listeners = {
            "pgbouncer": Listener(addr, ports["pgbouncer"], _banner(name + "/pgbouncer")),
            "postgres": Listener(addr, ports["postgres"], _banner(name + "/postgres")),
            "patroni": PatroniStandin(addr, role, ports["patroni"]),
            "agent": Listener(addr, ports["agent"], self._agent("primary")),
            "replica_agent": Listener(addr, ports["replica_agent"], self._agent("replica")),
        }

    @property
    def role(self):
        return self._role

    @role.setter
    def role(self, role):
        self._role = role
        self.listeners["patroni"].role = role

    @property
    def pgbouncer_up(self):
        return self.listeners["pgbouncer"].server is not None

    def set_pgbouncer(self, up):
        if up:
            self.listeners["pgbouncer"].start()
        else:
            self.listeners["pgbouncer"].stop()

    def start(self):
        for listener in self.listeners.values():
            listener.start()
        return self

    def stop(self):
        for listener in self.listeners.values():
            listener.stop()

    def _agent(self, profile):
        def respond(conn):
            if self.role != profile:
                line = "down #patroni /%s: 503" % profile
            elif not self.pgbouncer_up:
                line = "down #pgbouncer: connection refused"
            else:
                line = "up"
            conn.sendall(line.encode() + b"\n")
        return respond


def route(addr, port, timeout=2.0):
    """Connect through HAProxy and return the banner of whoever answered,
    or '' when HAProxy had nowhere to send the connection."""
    try:
        with socket.create_connection((addr, port), timeout=timeout) as s:
            data = b""
            while b"\n" not in data:
                chunk = s.recv(256)
                if not chunk:
                    break
                data += chunk
            return data.decode(errors="replace").strip()
    except OSError:
        return ""


def wait_route(addr, port, expected, timeout=20.0, stable=4):
    """Wait until `stable` connections in a row land in `expected` (a set of
    banners); returns the banners seen last. Fails with the history."""
    deadline = time.monotonic() + timeout
    history, streak = [], []
    while time.monotonic() < deadline:
        got = route(addr, port)
        history.append(got)
        streak = streak + [got] if got in expected else []
        if len(streak) >= stable:
            return streak
        time.sleep(0.2)
    raise AssertionError("connections to %s:%s did not settle on %s within %.0fs; last seen: %s"
                         % (addr, port, sorted(expected), timeout, history[-12:]))
