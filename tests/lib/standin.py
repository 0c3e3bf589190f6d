"""The Patroni stand-in and the threaded servers the suites script.

These are stand-ins, not the real servers: the real Patroni, PgBouncer and
PostgreSQL are exercised by tests/integration and tests/cluster. A stand-in
exists only for what the real program cannot be made to do on demand (a
role that changes at once, a hang, a fixed reply).

- Patroni's rule (docs/PROTOCOLS.md section 2): a health endpoint answers only
  200 or 503, 200 when the path fits the node's role, 503 otherwise (also
  for a typo); OPTIONS and HEAD get a bare status line. PRIMARY_OK and
  REPLICA_OK are the one table of those paths; tests/integration's
  subprocess stand-in (patroni_standin.py) reads them from here too.
- Listener: one threaded TCP service that can be stopped (connection
  refused) and started again on the same port; port 0 picks one.
- PatroniStandin: a Listener answering by that rule for its `role`
  (primary, replica, stopped) or, in role "hang", reading the request and
  never answering (a hung API).
"""

import socket
import socketserver
import threading

PRIMARY_OK = {"", "primary", "master", "leader", "read-write", "read-only", "health",
              "liveness", "readiness"}
REPLICA_OK = {"replica", "read-only", "async", "health", "liveness", "readiness"}
ROLE_OK = {"primary": PRIMARY_OK, "replica": REPLICA_OK, "stopped": set()}
REASONS = {200: "OK", 503: "Service Unavailable", 500: "Internal Server Error",
           404: "Not Found"}


def patroni_status(role, path):
    """200 or 503: Patroni's answer on a node in `role` to GET/OPTIONS path."""
    name = path.split("?", 1)[0].strip("/")
    return 200 if name in ROLE_OK.get(role, set()) else 503


def status_line(code):
    return ("HTTP/1.0 %d %s\r\n\r\n" % (code, REASONS.get(code, "Status"))).encode()


def read_request_line(sock, limit=16384):
    """Read an HTTP request head from sock; its (method, path), or None when
    the peer closed first."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < limit:
        b = sock.recv(4096)
        if not b:
            return None
        data += b
    parts = data.split(b"\r\n", 1)[0].decode("latin-1").split()
    return (parts[0] if parts else "", parts[1] if len(parts) >= 2 else "/")


def _family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False  # a hanging handler must not block stop()

    def __init__(self, addr, port, listener):
        self.address_family = _family(addr)
        self.listener = listener
        super().__init__((addr, port), _Handler)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        listener = self.server.listener
        with listener.lock:
            listener.requests += 1
        self.request.settimeout(listener.timeout)
        try:
            listener.respond(self.request)
        except OSError:
            pass


class Listener:
    """One threaded TCP service: respond(sock) per connection."""

    timeout = 3.0

    def __init__(self, addr, port=0, respond=None):
        self.addr, self.port = addr, port
        if respond is not None:
            self.respond = respond
        self.requests = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.server = None

    def start(self):
        if self.server:
            return self
        self.stopping.clear()
        self.server = _Server(self.addr, self.port, self)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self):
        self.stopping.set()
        if not self.server:
            return
        self.server.shutdown()
        self.server.server_close()
        self.server = None

    def respond(self, sock):
        raise NotImplementedError


class PatroniStandin(Listener):
    """A scripted stand-in for Patroni's REST API (health endpoints only)."""

    def __init__(self, addr, role="primary", port=0):
        self.role = role
        super().__init__(addr, port)

    def respond(self, sock):
        req = read_request_line(sock)
        if req is None:
            return
        if self.role == "hang":
            self.stopping.wait(30)
            return
        sock.sendall(status_line(patroni_status(self.role, req[1])))
