"""Egress-mode hostile agent for runagent's end-to-end tests (standard
library only). Its only allowed host is api.allowed.example:443, which the
tests never ask for (it would need DNS). Every entrypoint reports what
happened instead of raising.

Requests go to the proxy named by the sandbox's HTTP(S)_PROXY explicitly,
never directly: if the variable is missing the entrypoint fails instead of
falling back to a direct connection.
"""
import errno
import http.client
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request


def _err(e):
    code = getattr(e, "errno", None) or 0
    return {"blocked": True, "type": type(e).__name__, "errno": errno.errorcode.get(code),
            "error": ("%s: %s" % (type(e).__name__, e))[:300]}


def _try(f):
    try:
        return {"blocked": False, "value": f()}
    except BaseException as e:  # report, never raise
        return _err(e)


def _proxy():
    p = os.environ.get("HTTPS_PROXY") or os.environ.get("HTTP_PROXY")
    if not p:
        raise RuntimeError("no HTTPS_PROXY in the sandbox")
    return p


def ok():
    return {"ok": True}


def proxy_env():
    keys = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy")
    return {k: os.environ.get(k) for k in keys}


def fetch(url):
    """urllib through the proxy, as an agent would use it."""
    proxy = _proxy()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy, "https": proxy}))
    try:
        with opener.open(url, timeout=10) as r:
            return {"blocked": False, "status": r.status, "body": r.read(200).decode(errors="replace")}
    except urllib.error.HTTPError as e:
        return {"blocked": True, "status": e.code, "egress_reason": e.headers.get("X-Egress-Reason"),
                "egress": e.headers.get("X-Runagent-Egress"), "body": e.read(500).decode(errors="replace"),
                "error": "HTTPError: %s %s" % (e.code, e.reason)}
    except Exception as e:
        return _err(e)


def tunnel(target):
    """A raw CONNECT to the proxy, to read its status and reason header."""
    u = urllib.parse.urlsplit(_proxy())
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        c.request("CONNECT", target, headers={"Host": target})
        r = c.getresponse()
        return {"blocked": r.status != 200, "status": r.status, "egress_reason": r.getheader("X-Egress-Reason"),
                "egress": r.getheader("X-Runagent-Egress"),
                "error": "CONNECT %s: %s %s" % (target, r.status, r.reason)}
    except Exception as e:
        return _err(e)
    finally:
        c.close()


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


def probe(requests):
    """Several fetch/tunnel attempts in one invocation."""
    return {"results": [fetch(r["target"]) if r["kind"] == "fetch" else tunnel(r["target"]) for r in requests]}
