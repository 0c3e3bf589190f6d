"""Helpers for the control-socket tests: the harness process and a raw client."""

import os
import queue
import signal
import subprocess
import threading
import time

import agentcheck

# Mirrors src/ctl.h.
LINE_MAX = 256
DEADLINE_S = 2.0
MAX_CONNS = 16


class Server:
    """One harness `serve` process; stdout events and stderr log collected."""

    def __init__(self, harness, sock, state, env=None, ready_ms=None):
        self.sock = sock
        self.state = state
        self.events = queue.Queue()
        self.out = []
        self.err = []
        extra = [str(ready_ms)] if ready_ms is not None else []
        self.proc = subprocess.Popen(
            [harness, "serve", sock, state if state else "-"] + extra,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, **(env or {})))
        self.pumps = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.out, True),
                             daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.err, False),
                             daemon=True),
        ]
        for t in self.pumps:
            t.start()

    def _pump(self, f, sink, events):
        for line in f:
            sink.append(line)
            if events:
                self.events.put(line.rstrip("\n"))
        if events:
            self.events.put(None)

    def wait_exit(self, timeout=10):
        """The exit status, once all of stdout and stderr has been read."""
        rc = self.proc.wait(timeout)
        for t in self.pumps:
            t.join(timeout)
        return rc

    def log(self):
        return "".join(self.err)

    def next_event(self, timeout=5.0):
        try:
            ev = self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no event from the harness within %.1fs; log:\n%s"
                                 % (timeout, self.log()))
        if ev is None:
            self.wait_exit(5)
            raise AssertionError("harness exited (%s); log:\n%s"
                                 % (self.proc.returncode, self.log()))
        return ev

    def wait_listening(self):
        ev = self.next_event()
        assert ev.startswith("listening"), ev
        return ev

    def change(self, timeout=5.0):
        """The next `changed ...` line as a dict."""
        ev = self.next_event(timeout)
        assert ev.startswith("changed "), ev
        return dict(kv.split("=", 1) for kv in ev.split()[1:])

    def no_change(self, wait=0.2):
        time.sleep(wait)
        assert self.events.empty(), "unexpected change: %s" % self.events.get()

    def wait_log(self, text, timeout=5.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.log():
                return
            time.sleep(0.02)
        raise AssertionError("log never said %r:\n%s" % (text, self.log()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.wait_exit()
        assert rc == 0, "harness exit %s; log:\n%s" % (rc, self.log())
        assert "Sanitizer" not in self.log(), self.log()
        assert "runtime error" not in self.log(), self.log()


def request(sock, data, timeout=5.0):
    """Send data (str or bytes) on a fresh connection; the whole reply as str
    (the server may answer and close before it read everything)."""
    if isinstance(data, str):
        data = data.encode()
    return agentcheck.talk(sock, data, timeout, lenient=True)[0].decode()
