# Hostile agents: each entrypoint tries one escape and reports what
# happened instead of raising, so the test sees every outcome.
import ctypes, errno, os, socket, subprocess, time

libc = ctypes.CDLL(None, use_errno=True)


def _err(e):
    return {"type": type(e).__name__, "errno": errno.errorcode.get(getattr(e, "errno", None) or 0, None), "msg": str(e)[:200]}


def _try(f):
    try:
        return {"ok": True, "value": f()}
    except BaseException as e:
        return dict(ok=False, **_err(e))


def _libc(name, *args):
    ctypes.set_errno(0)
    r = getattr(libc, name)(*args)
    return {"ret": r, "errno": errno.errorcode.get(ctypes.get_errno(), None)}


def read_file(path):
    return _try(lambda: open(path, "rb").read(64).decode(errors="replace"))


def write_outside():
    out = {}
    for p in ["/x", "/usr/x", "/etc/x", "/run/runagent/x", "/proc/x", "/dev/x"]:
        out[p] = _try(lambda: open(p, "w").write("x"))
    # Writable: scratch, and the agent's code (an overlay on scratch).
    for p in ["/tmp/ok", "/agent/ok"]:
        out[p] = _try(lambda: open(p, "w").write("x"))
    return out


def syscalls():
    return {
        "mount": _libc("mount", b"none", b"/tmp", b"tmpfs", 0, None),
        "umount": _libc("umount2", b"/proc", 2),
        "unshare_user": _libc("unshare", 0x10000000),
        "unshare_net": _libc("unshare", 0x40000000),
        "ptrace_pid1": _libc("ptrace", 16, 1, None, None),
        "chroot": _libc("chroot", b"/tmp"),
        "keyctl": _libc("syscall", 250, 0, ctypes.c_long(-3), 0),  # KEYCTL_GET_KEYRING_ID
        "bpf": _libc("syscall", 321, 0, None, 0),
        "io_uring_setup": _libc("syscall", 425, 1, None),
        "personality_linux32": _libc("personality", 0x0008),
        "personality_query": _libc("personality", ctypes.c_ulong(0xFFFFFFFF)),
        "setuid0": _libc("setuid", 0),
        "raw_socket": _try(lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()),
        "packet_socket": _try(lambda: socket.socket(17, socket.SOCK_RAW, 0).close()),
        "udp_socket": _try(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()),
        "thread": _try(lambda: __import__("threading").Thread(target=lambda: None).start()),
    }


def setuid_binary():
    p = subprocess.run(["/usr/bin/mount", "-t", "tmpfs", "none", "/tmp"], capture_output=True, text=True)
    return {"code": p.returncode, "stderr": p.stderr.strip()[:200]}


def kill_host(pid):
    return _try(lambda: os.kill(pid, 9))


def connect_host(port):
    def f():
        s = socket.create_connection(("127.0.0.1", port), timeout=3)
        s.close()
    return _try(f)


def identity():
    status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    comm1 = _try(lambda: open("/proc/1/cmdline").read().replace("\0", " ").strip())
    return {
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
        "CapEff": status["CapEff"].strip(), "CapPrm": status["CapPrm"].strip(), "CapBnd": status["CapBnd"].strip(),
        "CapInh": status["CapInh"].strip(), "CapAmb": status["CapAmb"].strip(),
        "NoNewPrivs": status["NoNewPrivs"].strip(), "Seccomp": status["Seccomp"].strip(),
        "pids": pids, "ppid": os.getppid(), "pid1": comm1, "hostname": socket.gethostname(),
        "ifaces": [n for _, n in socket.if_nameindex()],
        "rlimit_nofile": __import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE),
        "rlimit_nproc": __import__("resource").getrlimit(__import__("resource").RLIMIT_NPROC),
        "mounts": sorted(l.split()[4] for l in open("/proc/self/mountinfo")),
        "fds": sorted(int(f) for f in os.listdir("/proc/self/fd")),
        "fd_targets": sorted(set(_try(lambda: os.readlink("/proc/self/fd/" + f)).get("value", "?").split(":")[0] for f in os.listdir("/proc/self/fd"))),
    }


def fd_exhaust():
    fds = []
    try:
        while True:
            fds.append(os.open("/dev/null", os.O_RDONLY))
    except OSError as e:
        res = {"opened": len(fds), **_err(e)}
    for fd in fds:
        os.close(fd)
    return res


def fork_bomb():
    kids = []
    res = None
    try:
        for _ in range(10000):
            pid = os.fork()
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            kids.append(pid)
    except OSError as e:
        res = {"forked": len(kids), **_err(e)}
    for k in kids:
        os.kill(k, 9)
        os.waitpid(k, 0)
    return res or {"forked": len(kids), "type": None}


def spawn_sleeper():
    p = subprocess.Popen(["sleep", "1000"])
    return p.pid


def fetch(url):
    import urllib.request
    def f():
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read().decode()
    return _try(f)


def fill_disk():
    def f():
        with open("/tmp/fill", "wb") as fh:
            for _ in range(1 << 16):
                fh.write(b"\0" * (1 << 20))
    return _try(f)


def no_processes():
    # The shim has installed the process filter (Limits.NoProcessCreation).
    import threading
    return {
        "fork": _try(lambda: os.fork()),
        "subprocess": _try(lambda: subprocess.run(["true"]).returncode),
        "thread": _try(lambda: threading.Thread(target=lambda: None).start()),
    }


def hang():
    p = subprocess.Popen(["sleep", "1000"])
    yield p.pid
    time.sleep(1000)
