"""The one agent-check client of the pytest suites: what HAProxy does
(connect, send nothing or agent-send, read one reply to EOF), and the
checks on every reply.

Every reply read through check()/wait_reply() is checked against the agent
protocol (docs/PROTOCOLS.md section 1): non-empty, exactly one line ending in
exactly one `\\n`, no NUL or CR, ASCII, a health word first, and a `#reason`
under 100 bytes when the word is `down`. A reply that HAProxy would ignore is
a failure. The suites differ only in their addresses (the `addr` and `src`
parameters) and in whether an unreachable agent is an error (query) or a
None (try_query).
"""

import socket
import time

from harness import poll_until

REASON_MAX = 100
READ_CAP = 65536


class AgentError(AssertionError):
    pass


def talk(target, send=None, timeout=5.0, src=None, cap=None, lenient=False):
    """Connect to target ((host, port), or a Unix socket path), send `send`
    if any, read to EOF (at most about cap bytes when cap is given).
    Returns (reply bytes, seconds from connect to EOF); src binds the
    client's address. lenient: a server that answers and closes before it
    read everything (a reset on send or receive) ends the exchange with
    what arrived instead of raising. Every request/reply exchange of the
    suites (agent checks, a bare HTTP GET, HAProxy's stats socket, the
    control socket) goes through here."""
    if isinstance(target, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        s = socket.socket(socket.AF_INET6 if ":" in target[0] else socket.AF_INET,
                          socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        if src:
            s.bind((src, 0))
        t0 = time.monotonic()
        s.connect(target)
        if send:
            try:
                s.sendall(send)
            except (BrokenPipeError, ConnectionResetError):
                if not lenient:
                    raise
        chunks, size = [], 0
        while cap is None or size < cap:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                if not lenient:
                    raise
                break
            if not b:
                break
            chunks.append(b)
            size += len(b)
        return b"".join(chunks), time.monotonic() - t0
    finally:
        s.close()


def query(port, addr, timeout=5.0, src=None, send=None):
    """One agent check. Returns (reply bytes, seconds from connect to EOF);
    src binds the client's address, send is written after connect (what
    HAProxy's agent-send does)."""
    return talk((addr, port), send, timeout, src, READ_CAP)


def try_query(port, addr, timeout=2.0, src=None):
    """The reply bytes, or None when the agent cannot be reached."""
    try:
        return query(port, addr, timeout, src)[0]
    except OSError:
        return None


def validate(reply):
    """Assert that reply is a well-formed agent line; return it as str."""
    if not reply:
        raise AgentError("empty reply (agent closed without answering)")
    if not reply.endswith(b"\n"):
        raise AgentError("reply does not end with \\n: %r" % reply)
    if reply.count(b"\n") != 1:
        raise AgentError("reply must be exactly one line ending in one \\n: %r" % reply)
    if b"\0" in reply or b"\r" in reply:
        raise AgentError("reply holds NUL or CR: %r" % reply)
    try:
        text = reply.decode("ascii")
    except UnicodeDecodeError:
        raise AgentError("reply is not ASCII: %r" % reply) from None
    line = text[:-1]
    if line != line.strip() or not line:
        raise AgentError("reply has leading/trailing blanks or is blank: %r" % reply)
    word = line.split()[0].lower()
    if word not in ("up", "down", "fail", "stopped"):
        raise AgentError("reply does not start with a health word: %r" % reply)
    if word != "up":
        if "#" not in line:
            raise AgentError("down reply without #reason: %r" % reply)
        reason = line.split("#", 1)[1]
        if len(reason.encode()) >= REASON_MAX:
            raise AgentError("reason is %d bytes (must be < %d): %r"
                             % (len(reason.encode()), REASON_MAX, reply))
    return text


def check(port, addr, timeout=5.0):
    """One validated check: (reply str, seconds)."""
    reply, secs = query(port, addr, timeout)
    return validate(reply), secs


def wait_reply(port, pred, timeout, addr, step=0.02, what=None):
    """Poll checks until pred(reply) is true or timeout seconds pass.

    Returns (reply, seconds since the call). Every reply on the way is
    validated. On timeout, raises with the distinct replies seen, in order.
    """
    t0 = time.monotonic()
    deadline = t0 + timeout
    seen = []
    while True:
        reply, _ = check(port, addr)
        now = time.monotonic()
        if pred(reply):
            return reply, now - t0
        if not seen or seen[-1] != reply:
            seen.append(reply)
        if now >= deadline:
            raise AssertionError("no reply matching %s within %.2fs; replies seen: %r"
                                 % (what or pred, timeout, seen))
        time.sleep(step)


def is_up(reply):
    return reply == "up\n"


def starts(prefix):
    def pred(reply):
        return reply.startswith(prefix)
    pred.__name__ = "startswith(%r)" % prefix
    return pred


def equals(expected):
    def pred(reply):
        return reply == expected
    pred.__name__ = "== %r" % expected
    return pred


def wait_answering(h, timeout=10.0):
    """Wait until happac `h` (.addr, .port, .alive(), .log()) answers one
    validated check; return (reply, seconds)."""
    def ready():
        if not h.alive():
            raise AssertionError("happac exited with %s:\n%s"
                                 % (h.proc.popen.returncode, h.log()))
        try:
            return check(h.port, h.addr, timeout=timeout)
        except ConnectionRefusedError:
            return None
    return poll_until(ready, timeout, step=0.01,
                      what="happac answering on %s:%d" % (h.addr, h.port))


def wait_prefix(port, addr, prefix, timeout, alive=None, log=None, step=0.02):
    """Poll until the agent answers a line starting with prefix; return it
    as str. alive()/log(): the daemon, to fail at once when it exits."""
    def answered():
        if alive is not None and not alive():
            raise AssertionError("happac exited:\n%s" % (log() if log else ""))
        r = try_query(port, addr)
        return r.decode("ascii", "replace") if r and r.startswith(prefix.encode()) else None
    try:
        return poll_until(answered, timeout, step=step,
                          what="agent %s:%d to answer %r" % (addr, port, prefix))
    except TimeoutError as e:
        raise AssertionError("%s; last reply %r; log:\n%s"
                             % (e, try_query(port, addr), log() if log else "")) from None
