"""A Debian 12 root booted with systemd-nspawn (systemd 252 as PID 1), sharing the
host's network, driven with nsenter: systemctl, journalctl, happac.

The root comes from scripts/rootfs.sh (debootstrap, cached under build/rootfs and
reused); every session boots a fresh copy of it, so the cache stays pristine.
Whatever fails to get there (no systemd-nspawn, no debootstrap or no archive, a
container that does not boot) raises SetupError with one line that says why.
"""

import os
import shutil
import signal
import subprocess
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ROOTFS = os.path.join(REPO, "build", "rootfs", "debian12-systemd")
# happac's run-time libraries (libcurl and libpq are loaded with dlopen), what the
# package's maintainer scripts use, and what the tests run inside.
ROOTFS_PACKAGES = ",".join([
    "systemd", "systemd-sysv", "dbus", "libevent-2.1-7", "libcurl4", "libpq5",
    "ca-certificates", "procps", "adduser", "iproute2"])
BOOT_TIMEOUT = 60
STOP_TIMEOUT = 30


class SetupError(RuntimeError):
    """The container could not be had; str() is one line."""


def build_rootfs(root=ROOTFS, wrapper=()):
    """The cached Debian 12 root (built on first use, about a minute); wrapper runs
    scripts/rootfs.sh under another command (the tests: `unshare -n`)."""
    if not shutil.which("debootstrap"):
        raise SetupError("debootstrap is not installed (scripts/deps.sh installs it)")
    p = subprocess.run(list(wrapper) + [os.path.join(REPO, "scripts", "rootfs.sh"), root,
                                        "bookworm", ROOTFS_PACKAGES],
                       capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        raise SetupError(lines[-1] if lines else "scripts/rootfs.sh failed (exit %d)"
                         % p.returncode)
    return root


def mounts_under(path):
    """Mount points at or under path, from /proc/mounts."""
    path = os.path.realpath(path).rstrip("/") + "/"
    with open("/proc/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    return [m for m in points if (m.rstrip("/") + "/").startswith(path)]


def nspawn_pids(root):
    """Pids of systemd-nspawn processes running on root."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"systemd-nspawn" and \
                root.encode() in argv:
            out.append(int(pid))
    return out


class Result:
    def __init__(self, p):
        self.rc, self.out, self.err = p.returncode, p.stdout, p.stderr

    def __repr__(self):
        return "rc=%s out=%r err=%r" % (self.rc, self.out[-2000:], self.err[-2000:])


class Container:
    """One root directory, booted and rebooted as often as a test wants."""

    def __init__(self, root, log_path):
        self.root = root
        self.log_path = log_path
        self.proc = None
        self.init_pid = None
        self.boots = 0

    # -- life cycle -------------------------------------------------------------------
    def boot(self):
        if not shutil.which("systemd-nspawn"):
            raise SetupError("systemd-nspawn is not installed (Debian package systemd-container; "
                             "scripts/deps.sh installs it)")
        self.boots += 1
        log = open(self.log_path, "a")
        log.write("\n==== boot %d\n" % self.boots)
        log.flush()
        t0 = time.monotonic()
        # --keep-unit: no scope of its own (the host needs no systemd);
        # --register=no: no machined; no --private-network: the host's loopback,
        # where the test cluster is.
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "-D", self.root, "-b", "--register=no", "--keep-unit",
             "--console=passive", "-M", "happac-test"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        try:
            self.init_pid = self._find_init(t0)
            state = self._wait_running(t0)
        except SetupError:
            self.kill()
            raise
        self.boot_seconds = time.monotonic() - t0
        return state

    def _find_init(self, t0):
        while time.monotonic() - t0 < BOOT_TIMEOUT:
            if self.proc.poll() is not None:
                raise SetupError("the container did not boot: systemd-nspawn exited %d (%s)"
                                 % (self.proc.returncode, self.console_tail()))
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open("/proc/%s/stat" % pid) as f:
                        stat = f.read()
                except OSError:
                    continue
                fields = stat[stat.rindex(")") + 2:].split()
                if int(fields[1]) == self.proc.pid and "(systemd)" in stat:
                    return int(pid)
            time.sleep(0.05)
        raise SetupError("the container did not boot: no systemd under systemd-nspawn after "
                         "%ds (%s)" % (BOOT_TIMEOUT, self.console_tail()))

    def _wait_running(self, t0):
        last = None
        while time.monotonic() - t0 < BOOT_TIMEOUT:
            if self.proc.poll() is not None:
                raise SetupError("the container did not boot: systemd-nspawn exited %d (%s)"
                                 % (self.proc.returncode, self.console_tail()))
            r = self.sh("systemctl is-system-running", timeout=10, check=False)
            last = r.out.strip()
            if last in ("running", "degraded"):
                return last
            time.sleep(0.1)
        raise SetupError("the container did not boot: systemctl is-system-running says %r "
                         "after %ds" % (last, BOOT_TIMEOUT))

    def console_tail(self):
        try:
            with open(self.log_path, errors="replace") as f:
                lines = [l.strip() for l in f if l.strip()]
            return " | ".join(lines[-3:])
        except OSError:
            return "no console log"

    def poweroff(self, timeout=STOP_TIMEOUT):
        """Shut down cleanly (systemd-nspawn turns SIGTERM into a poweroff)."""
        if not self.proc or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def reboot(self, timeout=STOP_TIMEOUT):
        """`systemctl reboot` inside: systemd-nspawn exits 133 and is started again,
        as systemd-nspawn@.service does."""
        self.sh("systemctl reboot", check=False, timeout=10)
        rc = self.proc.wait(timeout)
        assert rc == 133, "systemd-nspawn exited %d on reboot, not 133" % rc
        return self.boot()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)

    # -- inside ---------------------------------------------------------------------------
    def run(self, argv, timeout=30, check=True, user=None, input=None):
        """argv in every namespace of the container (as root, or as user via runuser)."""
        if user:
            argv = ["runuser", "-u", user, "--"] + list(argv)
        p = subprocess.run(["nsenter", "-t", str(self.init_pid), "-a"] + list(argv),
                           capture_output=True, text=True, timeout=timeout,
                           input=input, stdin=None if input is not None else subprocess.DEVNULL)
        r = Result(p)
        if check:
            assert r.rc == 0, "%s: %r" % (" ".join(argv), r)
        return r

    def sh(self, script, **kw):
        return self.run(["sh", "-c", script], **kw)

    def path(self, p):
        """A path inside the container, seen from the host (not for /run, /tmp)."""
        return os.path.join(self.root, p.lstrip("/"))

    def write(self, p, text, mode=0o644):
        host = self.path(p)
        os.makedirs(os.path.dirname(host), exist_ok=True)
        with open(host, "w") as f:
            f.write(text)
        os.chmod(host, mode)

    def show(self, unit, *props):
        r = self.run(["systemctl", "show", unit, "-p", ",".join(props)])
        out = {}
        for line in r.out.splitlines():
            k, _, v = line.partition("=")
            out[k] = v
        return out

    def journal(self, unit):
        """The unit's journal as text (slice it at an earlier len() for what came after)."""
        return self.run(["journalctl", "-u", unit, "--no-pager", "-o", "cat"]).out

    def wait(self, what, fn, timeout, step=0.1):
        """Poll fn until it returns something true; bounded in time."""
        t0 = time.monotonic()
        last = None
        while time.monotonic() - t0 < timeout:
            last = fn()
            if last:
                return last
            time.sleep(step)
        raise AssertionError("%s: not within %.0fs (last: %r)" % (what, timeout, last))
