"""Hostile agent for runagent's end-to-end tests (standard library only).

Each entrypoint tries one attack and returns a JSON report of what happened
({"blocked": true, "error": "PermissionError: ..."}) instead of raising, so
the test sees every outcome; memory_bomb is meant to get the sandbox killed.
"""
import ctypes
import errno
import os
import socket
import stat
import subprocess
import time

libc = ctypes.CDLL(None, use_errno=True)


def _err(e):
    code = getattr(e, "errno", None) or 0
    return {"blocked": True, "type": type(e).__name__, "errno": errno.errorcode.get(code),
            "error": ("%s: %s" % (type(e).__name__, e))[:300]}


def _try(f):
    try:
        return {"blocked": False, "value": f()}
    except BaseException as e:  # report, never raise
        return _err(e)


def _libc(name, *args):
    ctypes.set_errno(0)
    r = getattr(libc, name)(*args)
    e = ctypes.get_errno()
    return {"blocked": r == -1, "ret": r, "errno": errno.errorcode.get(e) if r == -1 else None,
            "error": os.strerror(e) if r == -1 else None}


def ok():
    return {"ok": True, "pid": os.getpid(), "uid": os.getuid()}


def fork_bomb():
    """Fork until the pids limit stops it; every child forks too and never
    exits, so the sandbox teardown has to kill them all."""
    forked, start = 0, time.monotonic()
    while time.monotonic() - start < 20:
        try:
            pid = os.fork()
        except OSError as e:
            res = _err(e)
            res["forked"] = forked
            res["seconds"] = round(time.monotonic() - start, 3)
            res["pids_seen"] = len([p for p in os.listdir("/proc") if p.isdigit()])
            return res
        if pid == 0:
            while True:  # a child: fork forever, idle when refused
                try:
                    os.fork()
                except OSError:
                    time.sleep(0.05)
        forked += 1
    return {"blocked": False, "forked": forked}


def memory_bomb(mb=2048):
    chunks = []
    try:
        for _ in range(mb // 64):
            chunks.append(b"\x01" * (64 << 20))  # touched, not lazily mapped
    except MemoryError as e:
        res = _err(e)
        res["allocated_mb"] = 64 * len(chunks)
        return res
    return {"blocked": False, "allocated_mb": 64 * len(chunks)}


def disk_fill(max_mb=4096):
    written, chunk = 0, b"\0" * (1 << 20)
    start = time.monotonic()
    try:
        for i in range(max_mb // 16 + 1):
            with open("/tmp/fill-%d" % i, "wb") as fh:
                for _ in range(16):
                    fh.write(chunk)
                    written += 1
                fh.flush()
                os.fsync(fh.fileno())
    except OSError as e:
        res = _err(e)
        res.update(written_mb=written, seconds=round(time.monotonic() - start, 3))
        return res
    return {"blocked": False, "written_mb": written}


def fd_exhaust():
    fds = []
    try:
        while True:
            fds.append(os.open("/dev/null", os.O_RDONLY))
    except OSError as e:
        res = _err(e)
        res["opened"] = len(fds)
    for fd in fds:
        os.close(fd)
    return res


def read_paths(paths):
    out = {}
    for p in paths:
        if os.path.isdir(p):
            out[p] = _try(lambda: os.listdir(p))
        else:
            out[p] = _try(lambda: open(p, "rb").read(64).decode(errors="replace"))
    return out


def write_outside():
    out = {}
    for p in ["/x", "/usr/x", "/etc/x", "/etc/passwd", "/root/x", "/var/x", "/home/x", "/dev/x", "/proc/sys/kernel/hostname"]:
        out[p] = _try(lambda: open(p, "w").write("x"))
    out["/tmp/ok"] = _try(lambda: open("/tmp/ok", "w").write("x"))
    return out


def syscalls():
    return {
        "ptrace_attach_pid1": _libc("ptrace", 16, 1, None, None),  # PTRACE_ATTACH
        "ptrace_seize_ppid": _libc("ptrace", 0x4206, os.getppid(), None, None),  # PTRACE_SEIZE
        "mount_tmpfs": _libc("mount", b"none", b"/tmp", b"tmpfs", 0, None),
        "mount_proc": _libc("mount", b"proc", b"/tmp", b"proc", 0, None),
        "unshare_user": _libc("unshare", 0x10000000),  # CLONE_NEWUSER
        "unshare_mount": _libc("unshare", 0x00020000),  # CLONE_NEWNS
        "unshare_net": _libc("unshare", 0x40000000),  # CLONE_NEWNET
        "raw_socket": _try(lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()),
        "packet_socket": _try(lambda: socket.socket(17, socket.SOCK_RAW, 0).close()),  # AF_PACKET
    }


def setuid_binary(path="/usr/bin/mount"):
    st = os.stat(path)
    p = subprocess.run([path, "-t", "tmpfs", "none", "/tmp"], capture_output=True, text=True, timeout=10)
    status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
    return {
        "setuid_bit": bool(st.st_mode & stat.S_ISUID), "owner_uid": st.st_uid,
        "code": p.returncode, "stderr": p.stderr.strip()[:300],
        "euid_after": os.geteuid(), "no_new_privs": status.get("NoNewPrivs", "").strip(),
        "blocked": p.returncode != 0,
    }


def kill_host(pid):
    return _try(lambda: os.kill(pid, 9))


def connect(host, port, timeout=3):
    def f():
        s = socket.create_connection((host, port), timeout=timeout)
        s.close()
        return "connected"
    return _try(f)


def no_route(ip="192.0.2.1"):
    """connect() of a UDP socket only looks up a route: no packet is sent."""
    def f():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect((ip, 9))
            return "route found"
        finally:
            s.close()
    res = _try(f)
    res["ifaces"] = [n for _, n in socket.if_nameindex()]
    return res


def cpu_spin(seconds=5.0, workers=4):
    start = time.monotonic()
    kids = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            end = time.monotonic() + seconds
            x = 0
            while time.monotonic() < end:
                x += 1
            os._exit(0)
        kids.append(pid)
    for k in kids:
        os.waitpid(k, 0)
    t = os.times()
    wall = time.monotonic() - start
    cpu = t.children_user + t.children_system
    return {"wall": round(wall, 3), "cpu": round(cpu, 3), "cpu_per_wall": round(cpu / wall, 3)}
