#!/usr/bin/python3
"""Hostile agent clients, many at once, in one process (poll loop).

Opens COUNT connections to ADDR:PORT from the given source addresses and
behaves per MODE on each:

  hold       connect and never read, never close (until the end); watch for
             the server's FIN with POLLRDHUP, without reading a byte
  shutwr     connect, shutdown(SHUT_WR) at once, then as `hold`
  rst        connect, then close with SO_LINGER 0 (an RST) at once
  junk       send PAYLOAD bytes of junk (binary, with NULs) after connect;
             read what comes back
  endless    send junk without a line end, without pause, until the server
             closes or resets (an endless `agent-send` line)
  slowloris  send one byte per second (--slow-interval; a request head that never ends:
             "GET /health HTTP/1.1\r\nX-Slow: aaaa..."); read what comes back
  read       a normal check: read to EOF (for comparison)

Every connection ends in one outcome, with the time from the start of its
connect() to the outcome:
  line     a full reply line was read, then EOF
  fin      the server closed (EOF/FIN), without a full line read (hold: the
           line is in the socket unread, that is expected)
  reset    ECONNRESET/EPIPE from the server
  rst_sent we reset it ourselves (mode rst)
  open     no outcome before the end of the run: the server kept it open
  connect_failed

The run ends HOLD seconds after the last connect was issued, or earlier when
every connection has an outcome and --hold-open is not given. With
--ready-file, that file is created once every connect has been issued.
Prints one JSON object on stdout with the counts and time percentiles.
"""

import argparse
import errno
import json
import os
import resource
import select
import socket
import struct
import sys
import time

POLLRDHUP = getattr(select, "POLLRDHUP", 0x2000)
SLOW = b"GET /health HTTP/1.1\r\nX-Slow: "


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100.0))]


class Conn:
    __slots__ = ("sock", "t0", "outcome", "t_out", "buf", "sent", "next_send",
                 "connected", "fileno")

    def __init__(self, sock, t0):
        self.sock = sock
        self.fileno = sock.fileno()
        self.t0 = t0
        self.outcome = None
        self.t_out = None
        self.buf = b""
        self.sent = 0
        self.next_send = 0.0
        self.connected = False


def lowest_cpu_priority():
    """Run at the lowest CPU priority there is (SCHED_IDLE; nice 19 where
    that is refused). A real attacker spends its own machine's CPU; this one
    shares the test machine's cores with the server, the checker and the
    kernel's loopback work. At SCHED_IDLE it runs only on CPU time nobody
    else wants and is preempted whenever anything else wakes up, so it
    cannot take a time slice from them. This does not cap its rate: with a
    core to spare it still opens 10,000 connections in ~0.25 s (~40k/s).
    (Measured on a 2-core VM, interleaved runs with other work on the
    machine: worst check 6-68 ms with the flood at normal priority, 1-21 ms
    at SCHED_IDLE with the checker at nice -10; on a quiet machine no
    measurable difference. What remains is queueing: see stresslib.LAT_*.)"""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        try:
            os.nice(19)
        except OSError:
            pass


def main():
    lowest_cpu_priority()
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sources", required=True, help="comma-separated local addresses")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--mode", required=True,
                    choices=("hold", "shutwr", "rst", "junk", "endless", "slowloris", "read"))
    ap.add_argument("--payload", type=int, default=1 << 20, help="junk bytes (mode junk)")
    ap.add_argument("--hold", type=float, default=5.0)
    ap.add_argument("--slow-interval", type=float, default=1.0,
                    help="seconds between the bytes of mode slowloris")
    ap.add_argument("--hold-open", action="store_true",
                    help="keep every connection until --hold ends, even when all have outcomes")
    ap.add_argument("--rate", type=float, default=0.0,
                    help="connections opened per second (0: as fast as possible)")
    ap.add_argument("--ready-file")
    ap.add_argument("--max-seconds", type=float, default=120.0)
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.count + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.count + 1024), hard))
    sources = args.sources.split(",")
    junk = (bytes(range(256)) * 256)  # 64 KiB, every byte value, NULs included, no '\n' run
    junk_noline = junk.replace(b"\n", b"x").replace(b"\r", b"y")
    hard_deadline = time.monotonic() + args.max_seconds

    poller = select.poll()
    conns = {}      # fd -> Conn, for the open sockets
    allconns = []   # every Conn, for the summary
    connect_failed = 0
    t_start = time.monotonic()

    def finish(c, outcome):
        if c.outcome is None:
            c.outcome = outcome
            c.t_out = time.monotonic()
        # Stop polling it; the socket itself stays open until the end (hold
        # modes keep their connections, unread, for the whole run).
        try:
            poller.unregister(c.fileno)
        except (KeyError, ValueError):
            pass

    def want_events(c):
        ev = POLLRDHUP | select.POLLERR | select.POLLHUP
        if not c.connected:
            return ev | select.POLLOUT
        if args.mode in ("junk", "endless") and c.outcome is None and (
                args.mode == "endless" or c.sent < args.payload):
            ev |= select.POLLOUT
        if args.mode in ("junk", "endless", "slowloris", "read"):
            ev |= select.POLLIN
        return ev

    def on_connected(c):
        c.connected = True
        if args.mode == "shutwr":
            c.sock.shutdown(socket.SHUT_WR)
        elif args.mode == "rst":
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            finish(c, "rst_sent")
            del conns[c.fileno]  # the fd number is free for the next socket
            c.sock.close()
            return
        elif args.mode == "slowloris":
            c.next_send = time.monotonic()
        poller.modify(c.fileno, want_events(c))

    def read_some(c):
        try:
            data = c.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            finish(c, "reset")
            return
        except BlockingIOError:
            return
        if not data:
            finish(c, "line" if c.buf.endswith(b"\n") else "fin")
            return
        c.buf += data[: 4096 - len(c.buf)] if len(c.buf) < 4096 else b""

    def write_some(c):
        try:
            if args.mode == "junk":
                n = c.sock.send(junk[: min(len(junk), args.payload - c.sent)])
            else:
                n = c.sock.send(junk_noline)
            c.sent += n
        except (ConnectionResetError, BrokenPipeError):
            finish(c, "reset")
        except BlockingIOError:
            pass

    def handle(fd, ev):
        c = conns.get(fd)
        if c is None or c.outcome == "rst_sent":
            return
        if not c.connected:
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                finish(c, "connect_failed")
                return
            on_connected(c)
            if c.outcome:
                return
        if args.mode in ("hold", "shutwr"):
            if ev & (POLLRDHUP | select.POLLHUP | select.POLLERR) and c.outcome is None:
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                finish(c, "reset" if err else "fin")
            return
        if ev & select.POLLOUT and c.outcome is None and args.mode in ("junk", "endless"):
            write_some(c)
        if c.outcome is None and ev & (select.POLLIN | POLLRDHUP | select.POLLHUP | select.POLLERR):
            read_some(c)
        if c.outcome is None:
            try:
                poller.modify(fd, want_events(c))
            except (KeyError, ValueError):
                pass

    # Issue every connect, serving events between batches so that early
    # connections are handled while later ones are being opened.
    for i in range(args.count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((sources[i % len(sources)], 0))
            t0 = time.monotonic()
            rc = s.connect_ex((args.addr, args.port))
        except OSError as e:
            connect_failed += 1
            s.close()
            if e.errno in (errno.EMFILE, errno.ENFILE):
                break
            continue
        if rc not in (0, errno.EINPROGRESS):
            connect_failed += 1
            s.close()
            continue
        c = Conn(s, t0)
        conns[c.fileno] = c
        allconns.append(c)
        poller.register(c.fileno, want_events(c))
        if args.rate > 0 and i % 16 == 15:
            # Paced: serve events until the next batch is due.
            while True:
                wait = t_start + (i + 1) / args.rate - time.monotonic()
                if wait <= 0:
                    break
                for fd, ev in poller.poll(max(1, int(wait * 1000))):
                    handle(fd, ev)
        elif i % 256 == 255:
            for fd, ev in poller.poll(0):
                handle(fd, ev)
    t_issued = time.monotonic()
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            f.write("%d\n" % len(allconns))

    end = t_issued + args.hold
    last_slow = 0.0
    while True:
        now = time.monotonic()
        if now >= end or now >= hard_deadline:
            break
        if not args.hold_open and all(c.outcome for c in allconns):
            break
        if args.mode == "slowloris" and now - last_slow >= min(0.05, args.slow_interval / 4):
            last_slow = now
            for c in conns.values():
                if c.connected and c.outcome is None and now >= c.next_send:
                    c.next_send = now + args.slow_interval
                    try:
                        # a request head that never ends, one byte a second
                        c.sent += c.sock.send(SLOW[c.sent:c.sent + 1] or b"a")
                    except (ConnectionResetError, BrokenPipeError):
                        finish(c, "reset")
                    except BlockingIOError:
                        pass
        for fd, ev in poller.poll(20):
            handle(fd, ev)

    counts, times, lines = {}, [], {}
    for c in allconns:
        outcome = c.outcome or "open"
        counts[outcome] = counts.get(outcome, 0) + 1
        if c.outcome and c.outcome not in ("rst_sent", "connect_failed"):
            times.append((c.t_out - c.t0) * 1000.0)
        if c.buf:
            key = c.buf[:200].decode("latin-1")
            lines[key] = lines.get(key, 0) + 1
    if connect_failed:
        counts["connect_failed"] = counts.get("connect_failed", 0) + connect_failed
    result = {
        "mode": args.mode, "count": args.count, "opened": len(allconns),
        "counts": counts, "lines": lines,
        "outcome_ms_p50": pct(times, 50), "outcome_ms_p99": pct(times, 99),
        "outcome_ms_max": max(times) if times else None,
        "issue_seconds": t_issued - t_start,
        "bytes_sent": sum(c.sent for c in allconns),
    }
    json.dump(result, sys.stdout)
    sys.stdout.flush()
    for c in conns.values():
        try:
            c.sock.close()
        except OSError:
            pass


if __name__ == "__main__":
    main()
