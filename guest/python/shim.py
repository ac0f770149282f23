# runagent Python shim: runs one call of a Python agent for the runagent
# host. It is embedded in the runagent binary and started by the supervisor
# as
#
#     python3 -I -B -u shim-<hash>.py    (or its compiled .pyc)
#
# with the control channel on file descriptor 3. The protocol is described
# in docs/guest-protocol.md: frames of a 4-byte big-endian length and a
# UTF-8 JSON object; the host sends "init" and "invoke", the shim answers
# "hello", then "chunk"s and one "result" or "error", and exits — or, for
# an invoke with "keep" (sandbox reuse per user_id), waits for the next.
#
# Standard library only, Python >= 3.8. Startup time is request latency, so
# only os and sys (which site has imported already) are imported up front,
# and everything else where it is first needed. Even the json package is
# avoided: importing it costs ~5 ms (it pulls in re, enum, functools and
# collections), so frames are coded with its C accelerator _json directly,
# falling back to json where _json is missing or behaves unexpectedly.
# ctypes is imported only when the host hands over a process-creation
# filter (RUNAGENT_SECCOMP_FD; docs/guest-protocol.md, "Process-creation
# filter").

import os
import sys

_CONTROL_FD = 3
# Candidate descriptors for the private copy of the control channel: high,
# so that an agent writing to a small number does not hit it by accident.
_PRIVATE_FDS = (1023, 767, 511, 255, 127, 63)
_MAX_FRAME = 256 << 20  # host frames larger than this are a protocol error
_MAX_TEXT = 64 << 10  # cap of an error message or traceback, in characters

# The shim's own frames carry this file name, also when it runs from the
# bytecode CompileShim made (then __file__ is the .pyc).
_SHIM_FILE = (lambda: None).__code__.co_filename

AGENT_ERROR = "AGENT_ERROR"
SERIALIZATION_ERROR = "SERIALIZATION_ERROR"
ENTRYPOINT_ERROR = "ENTRYPOINT_ERROR"
PROTOCOL_ERROR = "PROTOCOL_ERROR"
SANDBOX_ERROR = "SANDBOX_ERROR"

# The host's process-creation filter (Limits.NoProcessCreation): when this
# variable is set, it names a descriptor holding a seccomp program as raw
# struct sock_filter entries, which the shim installs right before the
# agent's function is called.
_SECCOMP_ENV = "RUNAGENT_SECCOMP_FD"


class _ChannelClosed(Exception):
    """The host end of the control channel is gone."""


class _ProtocolError(Exception):
    """A malformed frame from the host."""


class _SerializationError(Exception):
    """A value that is not JSON."""

    def __init__(self, type_name, message):
        Exception.__init__(self, message)
        self.type_name = type_name


class _EntrypointError(Exception):
    """An entrypoint that cannot be called as asked."""


# --- JSON codec --------------------------------------------------------------

_WHITESPACE = " \t\n\r"


def _no_default(o):
    raise TypeError("object of type %s is not JSON serializable" % type(o).__name__)


def _reject_constant(name):
    raise ValueError("%s is not JSON" % name)


class _ScanContext(object):
    """What _json.make_scanner reads from a json.JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_reject_constant)


def _c_codec():
    """Returns loads and dumps built on _json, or raises if _json is
    unusable here."""
    import _json

    scan = _json.make_scanner(_ScanContext())
    make_encoder = _json.make_encoder
    if make_encoder is None or not callable(scan):
        raise ImportError("_json has no C scanner or encoder")
    encoders = (_json.encode_basestring, _json.encode_basestring_ascii)

    def loads(text):
        i = len(text) - len(text.lstrip(_WHITESPACE))
        try:
            value, end = scan(text, i)
        except StopIteration as e:
            raise ValueError("expecting a JSON value at offset %d" % e.value)
        if text[end:].strip(_WHITESPACE):
            raise ValueError("extra data at offset %d" % end)
        return value

    def dumps(value, ascii_only=False, default=None):
        encode = make_encoder(
            {}, default or _no_default, encoders[ascii_only], None, ":", ",", False, False, False
        )
        return "".join(encode(value, 0))

    # Check the private API still means what it meant.
    sample = '{"a":[1,2.5,-0.0,"\\u00e9\\"",true,null],"b":{}}'
    if dumps(loads(sample), True) != sample or dumps(loads(sample)) != sample.replace(
        "\\u00e9", "\u00e9"
    ):
        raise ImportError("_json does not round-trip")
    return loads, dumps


def _py_codec():
    import json

    def loads(text):
        return json.loads(text, parse_constant=_reject_constant)

    def dumps(value, ascii_only=False, default=None):
        return json.dumps(
            value,
            ensure_ascii=ascii_only,
            allow_nan=False,
            separators=(",", ":"),
            default=default,
        )

    return loads, dumps


try:
    _loads, _dumps = _c_codec()
except Exception:
    _loads, _dumps = _py_codec()


# --- control channel ---------------------------------------------------------


def _private_fd(fd):
    """Moves fd to a high, non-inheritable descriptor — so that an agent
    writing to a small number does not hit it by accident, and its
    subprocesses do not inherit it — and closes fd."""
    new = -1
    for n in _PRIVATE_FDS:
        try:
            os.fstat(n)
            continue  # in use
        except OSError:
            pass
        try:
            new = os.dup2(fd, n, inheritable=False)
            break
        except OSError:
            continue  # above the descriptor limit
    if new < 0:
        new = os.dup(fd)  # non-inheritable (PEP 446)
    os.close(fd)
    return new


def _take_control_fd():
    """Moves fd 3 to a private, non-inheritable descriptor and closes fd 3,
    so neither the agent (by writing to fd 3) nor its subprocesses (by
    inheriting it) can reach the control channel."""
    try:
        os.fstat(_CONTROL_FD)
    except OSError:
        sys.stderr.write("runagent shim: control channel (fd 3) is not open\n")
        os._exit(2)
    return _private_fd(_CONTROL_FD)


def _stdin_from_devnull():
    fd = os.open(os.devnull, os.O_RDONLY)
    if fd != 0:
        os.dup2(fd, 0)
        os.close(fd)
    if sys.stdin is None:
        sys.stdin = open(0, "r", closefd=False)


class _Channel(object):
    def __init__(self, fd):
        self.fd = fd
        self.broken = False

    def recv(self):
        """Returns the next frame as a dict, or None if the host closed the
        channel between frames."""
        head = self._read(4, True)
        if head is None:
            return None
        n = int.from_bytes(head, "big")
        if n > _MAX_FRAME:
            raise _ProtocolError("frame of %d bytes exceeds the %d-byte limit" % (n, _MAX_FRAME))
        body = self._read(n, False)
        try:
            msg = _loads(body.decode("utf-8"))
        except (ValueError, RecursionError) as e:  # ValueError includes UnicodeDecodeError
            raise _ProtocolError("frame is not valid JSON: %s" % e)
        if not isinstance(msg, dict):
            raise _ProtocolError("frame is not a JSON object")
        return msg

    def _read(self, n, eof_ok):
        parts = []
        got = 0
        while got < n:
            try:
                b = os.read(self.fd, min(n - got, 1 << 20))
            except OSError as e:
                raise _ChannelClosed(str(e))
            if not b:
                if got == 0 and eof_ok:
                    return None
                raise _ChannelClosed("control channel closed inside a frame")
            parts.append(b)
            got += len(b)
        return b"".join(parts)

    def send(self, payload):
        """Writes one frame, all of it, right away."""
        if self.broken:
            raise _ChannelClosed("control channel broken by an interrupted write")
        view = memoryview(len(payload).to_bytes(4, "big") + payload)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except OSError as e:
            self.broken = True
            raise _ChannelClosed(str(e))
        except BaseException:
            # Interrupted (KeyboardInterrupt from a signal) mid-frame: the
            # stream is no longer framed, so nothing more may be sent.
            if len(view):
                self.broken = True
            raise


# --- process-creation filter -------------------------------------------------

# seccomp(2)'s number where it is known; elsewhere the shim falls back to
# prctl, which filters only the calling thread.
_SYS_SECCOMP = {"x86_64": 317, "aarch64": 277, "riscv64": 277, "ppc64le": 358, "s390x": 348}
_BPF_MAXINSNS = 4096


def _read_all(fd):
    parts = []
    while True:
        b = os.read(fd, 65536)
        if not b:
            return b"".join(parts)
        parts.append(b)


def _take_process_filter():
    """When the host handed over a process-creation filter (_SECCOMP_ENV),
    reads it all, closes its descriptor, removes the variable, and returns
    a function that installs the filter (raising OSError if it cannot);
    otherwise returns None. Everything but the installation happens now,
    before the agent's code is imported, so that code can neither see nor
    replace the filter."""
    value = os.environ.pop(_SECCOMP_ENV, None)
    if value is None:
        return None
    try:
        try:
            fd = int(value)
        except ValueError:
            raise OSError("%s=%r is not a file descriptor" % (_SECCOMP_ENV, value))
        if fd < 0:
            raise OSError("%s=%r is not a file descriptor" % (_SECCOMP_ENV, value))
        try:
            data = _read_all(fd)
        finally:
            try:
                os.close(fd)
            except OSError:
                pass
        if not data or len(data) % 8 or len(data) // 8 > _BPF_MAXINSNS:
            raise OSError("the filter is %d bytes, not 1 to %d 8-byte instructions" % (len(data), _BPF_MAXINSNS))
        return _filter_installer(data)
    except BaseException as e:
        error = e

        def fail():
            raise error

        return fail


def _filter_installer(data):
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    get_errno = ctypes.get_errno
    set_errno = ctypes.set_errno

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buf = ctypes.create_string_buffer(data, len(data))
    prog = SockFprog(len(data) // 8, ctypes.addressof(buf))
    prog_ptr = ctypes.c_void_p(ctypes.addressof(prog))
    nr = None
    if ctypes.sizeof(ctypes.c_void_p) == 8:
        nr = _SYS_SECCOMP.get(os.uname().machine)
    PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
    SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC = 1, 1

    def check(r, what):
        if r != 0:
            e = get_errno()
            raise OSError(e, "%s: %s" % (what, os.strerror(e)) if e else "%s returned %d" % (what, r))

    def install():
        keep = (buf, prog)  # noqa: F841 (the kernel reads them)
        set_errno(0)
        check(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
        if nr is not None:
            # Every thread, also those the agent's imports started.
            set_errno(0)
            r = syscall(
                ctypes.c_long(nr),
                ctypes.c_ulong(SECCOMP_SET_MODE_FILTER),
                ctypes.c_ulong(SECCOMP_FILTER_FLAG_TSYNC),
                prog_ptr,
            )
            if r > 0:
                raise OSError("seccomp: thread %d could not be synchronised" % r)
            check(r, "seccomp(SECCOMP_SET_MODE_FILTER, TSYNC)")
            return
        if len(os.listdir("/proc/self/task")) != 1:
            raise OSError("cannot filter every thread without seccomp(2) on %s" % os.uname().machine)
        set_errno(0)
        check(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog_ptr.value, 0, 0), "prctl(PR_SET_SECCOMP)")

    return install


# --- JSON --------------------------------------------------------------------


def _type_name(t):
    module = getattr(t, "__module__", None)
    name = getattr(t, "__qualname__", None) or getattr(t, "__name__", "?")
    if module in (None, "builtins"):
        return name
    return "%s.%s" % (module, name)


def _as_dict(d, t, method):
    if not isinstance(d, dict):
        raise TypeError(
            "%s.%s() returned %s, not a dict" % (_type_name(t), method, _type_name(type(d)))
        )
    return d


def _to_json(o):
    """json's default hook: dataclasses and pydantic models become dicts;
    anything else is not JSON."""
    t = type(o)
    if not isinstance(o, type):
        if hasattr(t, "__dataclass_fields__"):
            import dataclasses  # already imported by whoever made o

            return {f.name: getattr(o, f.name) for f in dataclasses.fields(o)}
        dump = getattr(o, "model_dump", None)  # pydantic v2
        if callable(dump):
            try:
                d = dump(mode="json")
            except TypeError:
                d = dump()
            return _as_dict(d, t, "model_dump")
        dump = getattr(o, "dict", None)  # pydantic v1
        if callable(dump):
            return _as_dict(dump(), t, "dict")
    raise TypeError("object of type %s is not JSON serializable" % _type_name(t))


def _encode(msg, what):
    """Encodes a frame holding an agent value; what names the value in the
    error when it is not JSON."""
    try:
        text = _dumps(msg, False, _to_json)
        return text.encode("utf-8")
    except _ChannelClosed:
        raise
    except UnicodeEncodeError:
        # A str holding half of a surrogate pair ("\ud800") has no UTF-8
        # form: it is not Unicode text, and no client could read it.
        raise _SerializationError(
            "UnicodeEncodeError",
            "the agent returned text that is not valid Unicode (a lone surrogate, such as '\\ud800', "
            "in a string of the %s); return str that encodes to UTF-8, e.g. "
            "s.encode('utf-8', 'replace').decode('utf-8')" % what,
        )
    except ValueError as e:
        detail = str(e)
        if "Out of range float" in detail:
            detail += " (NaN and Infinity are not JSON)"
        raise _SerializationError(type(e).__name__, "%s is not JSON serializable: %s" % (what, detail))
    except RecursionError:
        raise _SerializationError("RecursionError", "%s is not JSON serializable: nested too deeply" % what)
    except Exception as e:
        raise _SerializationError(
            type(e).__name__, "%s is not JSON serializable: %s" % (what, _safe_str(e))
        )


def _encode_control(msg):
    """Encodes a frame made by the shim itself; ASCII-escaped, so even a
    lone surrogate in an exception message cannot break it."""
    return _dumps(msg, True).encode("ascii")


# --- errors ------------------------------------------------------------------


def _safe_str(e):
    try:
        return str(e)
    except BaseException:
        return "<unprintable %s>" % type(e).__name__


def _head(s):
    return s if len(s) <= _MAX_TEXT else s[:_MAX_TEXT] + "…"


def _tail(s):
    return s if len(s) <= _MAX_TEXT else "…" + s[-_MAX_TEXT:]


_agent_prefixes = ()


def _is_agent_file(filename):
    return filename.startswith(_agent_prefixes)


def _trim(tb):
    """Drops the frames before the agent's own: the shim's, importlib's and
    asyncio's. Without an agent frame (a syntax error, a builtin as the
    entrypoint), drops only the shim's and importlib's."""
    t = tb
    while t is not None and not _is_agent_file(t.tb_frame.f_code.co_filename):
        t = t.tb_next
    if t is not None:
        return t
    t = tb
    while t is not None:
        name = t.tb_frame.f_code.co_filename
        if name != _SHIM_FILE and not name.startswith("<frozen importlib"):
            break
        t = t.tb_next
    return t


def _traceback(e):
    """The formatted traceback of e, trimmed, with the agent's files named
    relative to the agent directory (the host's layout is not the agent's
    business, nor its callers')."""
    try:
        import traceback

        text = "".join(traceback.format_exception(type(e), e, _trim(e.__traceback__)))
    except BaseException:
        return ""
    for prefix in _agent_prefixes:
        text = text.replace('File "' + prefix, 'File "')
    return text


def _failure(code, e):
    return {
        "code": code,
        "type": type(e).__name__,
        "message": _head(_safe_str(e)),
        "traceback": _tail(_traceback(e)),
    }


def _send_error(ch, call_id, failure):
    ch.send(_encode_control({"type": "error", "id": call_id, "error": failure}))


# --- loading -----------------------------------------------------------------
#
# Entrypoint files are imported as modules of a package, as RunAgent's
# importer does when a project is a package, so that relative imports
# ("from .utils import helper", as in RunAgent's default template) work:
# the agent directory is the package _ROOT_PACKAGE, each folder under it a
# subpackage of its parent (its __init__.py run, if it has one), and a
# file the module of its folder's package: "main.py" is
# _runagent_agent.main, "src/agents/chat.py" _runagent_agent.src.agents.chat.
# The root's name is private, so it never hides a module of the agent's
# (an "agent.py" beside "main.py" stays importable as "agent"). The agent
# directory and each entrypoint file's folder are also on sys.path, so
# absolute imports of the agent's own modules work from any of them.

_ROOT_PACKAGE = "_runagent_agent"


class _NameTaken(ImportError):
    """A package name the shim would use is taken by another module."""


def _identifier(part):
    """A file or folder name made a Python identifier: anything else than
    a letter, digit or underscore becomes "_", and a leading digit gets
    one in front."""
    p = "".join(c if (c.isalnum() or c == "_") else "_" for c in part) or "_"
    if p[0].isdigit():
        p = "_" + p
    return p


def _module_name(agent_dir, path):
    """The module name of a file relative to the agent directory (without
    _ROOT_PACKAGE): its path, dotted, each part made an identifier."""
    rel = os.path.relpath(path, agent_dir)
    if rel.startswith(os.pardir + os.sep):
        rel = os.path.basename(path)
    if rel.endswith(".py"):
        rel = rel[:-3]
    return ".".join(_identifier(p) for p in rel.split(os.sep))


def _spec_tools():
    try:  # what importlib.util re-exports, without importing importlib
        from _frozen_importlib import ModuleSpec, module_from_spec
        from _frozen_importlib_external import spec_from_file_location
    except ImportError:
        from importlib.machinery import ModuleSpec
        from importlib.util import module_from_spec, spec_from_file_location
    return ModuleSpec, module_from_spec, spec_from_file_location


def _exec_file(name, path, what):
    """Runs the Python file at path as module name (a package's when path
    is an __init__.py) and returns it. The module is in sys.modules while
    it runs, for circular and relative imports, and removed again if it
    fails."""
    _, module_from_spec, spec_from_file_location = _spec_tools()
    spec = spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError("cannot import %r: not a Python source file" % what)
    mod = module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        if sys.modules.get(name) is mod:
            del sys.modules[name]
        raise
    return mod


def _same_dir(mod, folder):
    real = os.path.realpath(folder)
    try:
        return any(os.path.realpath(p) == real for p in mod.__path__)
    except Exception:
        return False


def _package(name, folder, parent, attr):
    """Imports the package name for folder, a subpackage attr of parent
    (None for the root): its __init__.py, or, without one, an empty
    package module whose __path__ is folder."""
    mod = sys.modules.get(name)
    if mod is not None:
        if _same_dir(mod, folder):
            return mod
        raise _NameTaken("%s is taken by another module" % name)
    init = os.path.join(folder, "__init__.py")
    if os.path.isfile(init):
        mod = _exec_file(name, init, os.path.relpath(init, folder))
    else:
        ModuleSpec, module_from_spec, _ = _spec_tools()
        spec = ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [folder]
        mod = module_from_spec(spec)
        sys.modules[name] = mod
    if parent is not None:
        setattr(parent, attr, mod)
    return mod


def _package_of(agent_dir, folder):
    """Imports the package of folder (the agent directory or a folder
    under it) and its parents; returns it and its name."""
    name = _ROOT_PACKAGE
    pkg = _package(name, agent_dir, None, None)
    rel = os.path.relpath(folder, agent_dir)
    if rel == os.curdir:
        return pkg, name
    path = agent_dir
    for part in rel.split(os.sep):
        path = os.path.join(path, part)
        attr = _identifier(part)
        name = name + "." + attr
        pkg = _package(name, path, pkg, attr)
    return pkg, name


def _imported(path):
    """The module already imported from the file at path (by an earlier
    entrypoint, or by the agent's own imports), or None."""
    real = None
    for mod in list(sys.modules.values()):
        try:
            f = mod.__file__
        except Exception:
            continue
        if not isinstance(f, str) or not f.startswith(_agent_prefixes):
            continue
        if real is None:
            real = os.path.realpath(path)
        if os.path.realpath(f) == real:
            return mod
    return None


def _import_file(agent_dir, file, n):
    """Imports an entrypoint's file once: as a module of its folder's
    package, or, where that name is taken (two names that become the same
    identifier), under a private top-level name without a package."""
    path = os.path.normpath(os.path.join(agent_dir, file))
    if not os.path.isfile(path):
        raise FileNotFoundError("entrypoint file %r not found in the agent directory" % file)
    folder, base = os.path.split(path)
    if folder == agent_dir or folder.startswith(agent_dir + os.sep):
        try:
            pkg, pkg_name = _package_of(agent_dir, folder)
        except _NameTaken:
            pkg = None
        if pkg is not None:
            if base == "__init__.py":
                return pkg
            mod = _imported(path)  # also by the package's __init__.py
            if mod is not None:
                return mod
            attr = _identifier(base[:-3] if base.endswith(".py") else base)
            name = pkg_name + "." + attr
            if name not in sys.modules:
                mod = _exec_file(name, path, file)
                setattr(pkg, attr, mod)
                return mod
    mod = _imported(path)
    if mod is not None:
        return mod
    return _exec_file("__runagent_entry_%d__" % n, path, file)


def _resolve(mod, path):
    if not path:
        raise AttributeError("entrypoint has no module attribute path")
    obj = mod
    for attr in path.split("."):
        obj = getattr(obj, attr)
    if not callable(obj):
        raise TypeError("%s is %s, not callable" % (path, _type_name(type(obj))))
    return obj


def _entry_folders(agent_dir, refs):
    """The folders of the entrypoint files under the agent directory,
    other than itself, in the order of refs."""
    out = []
    for ref in refs:
        folder = os.path.dirname(os.path.normpath(os.path.join(agent_dir, ref["file"])))
        if folder.startswith(agent_dir + os.sep) and folder not in out and os.path.isdir(folder):
            out.append(folder)
    return out


def _add_environment(env_dir):
    """Makes the agent's environment importable: env_dir/site-packages as
    a site directory (its .pth files processed), placed ahead of the
    system's site-packages and behind the standard library and whatever
    is before it (the agent's folders)."""
    import site

    before = set(sys.path)
    site.addsitedir(os.path.join(env_dir, "site-packages"))
    added = [p for p in sys.path if p not in before]
    if not added:
        return
    rest = [p for p in sys.path if p in before]
    try:
        system = set(site.getsitepackages())
    except Exception:
        system = set()
    at = next((i for i, p in enumerate(rest) if p in system), len(rest))
    sys.path[:] = rest[:at] + added + rest[at:]


def _load(agent_dir, refs, env_dir=None):
    """Imports each entrypoint's file once and resolves its function.
    Returns {tag: (function or None, failure or None)} and the hello list."""
    global _agent_prefixes
    agent_dir = os.path.abspath(agent_dir)
    real = os.path.realpath(agent_dir)
    _agent_prefixes = tuple({agent_dir + os.sep, real + os.sep})
    setup_error = None
    try:
        os.chdir(agent_dir)
    except OSError as e:
        setup_error = e
    shim_dir = os.path.dirname(os.path.abspath(__file__))
    if sys.path and sys.path[0] == shim_dir:  # Python < 3.11 without -P
        del sys.path[0]
    sys.path[0:0] = [agent_dir] + _entry_folders(agent_dir, refs)
    if env_dir and setup_error is None:
        if os.path.isdir(env_dir):
            _add_environment(env_dir)
        else:
            setup_error = FileNotFoundError("the agent's environment %s is not a directory" % env_dir)

    modules = {}  # file -> module or exception
    entries = {}
    statuses = []
    for ref in refs:
        tag, file, attr = ref["tag"], ref["file"], ref["module"]
        fn = None
        failure = None
        try:
            if setup_error is not None:
                raise setup_error
            mod = modules.get(file)
            if mod is None:
                try:
                    mod = _import_file(agent_dir, file, len(modules))
                except BaseException as e:
                    mod = e
                modules[file] = mod
            if isinstance(mod, BaseException):
                raise mod
            fn = _resolve(mod, attr)
        except BaseException as e:
            failure = _failure(ENTRYPOINT_ERROR, e)
        entries[tag] = (fn, failure)
        status = {"tag": tag, "ok": failure is None}
        if failure is not None:
            status["error"] = failure
        elif _is_generator(fn):
            status["generator"] = True
        statuses.append(status)
    return entries, statuses


# CO_GENERATOR and CO_ASYNC_GENERATOR (inspect's, without importing it).
_GENERATOR_FLAGS = 0x20 | 0x200


def _is_generator(fn):
    """Whether fn is a generator function, sync or async (its result
    streams)."""
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    return code is not None and bool(getattr(code, "co_flags", 0) & _GENERATOR_FLAGS)


# --- calling -----------------------------------------------------------------


def _is_awaitable(r):
    return hasattr(type(r), "__await__")


def _is_async_iterable(r):
    return hasattr(type(r), "__aiter__")


def _check_streamable(r):
    # A str, bytes or dict is iterable, but streaming its characters or keys
    # is never what a streaming entrypoint means.
    if isinstance(r, (str, bytes, bytearray, dict)) or not hasattr(type(r), "__iter__"):
        raise _EntrypointError(
            "streaming entrypoint returned %s, not an iterable or a generator" % _type_name(type(r))
        )


_GeneratorType = type((lambda: (yield))())


def _drive_sync(r, stream, emit):
    if stream:
        _check_streamable(r)
        for item in r:
            emit(item)
        return None
    if isinstance(r, _GeneratorType):
        return list(r)
    return r


async def _drive_async(r, stream, emit):
    if _is_awaitable(r):
        r = await r
    if _is_async_iterable(r):
        if stream:
            async for item in r:
                emit(item)
            return None
        return [item async for item in r]
    return _drive_sync(r, stream, emit)


def _call(fn, args, kwargs, stream, emit):
    r = fn(*args, **kwargs)
    if _is_awaitable(r) or _is_async_iterable(r):
        import asyncio

        return asyncio.run(_drive_async(r, stream, emit))
    return _drive_sync(r, stream, emit)


def _invoke(ch, entries, call_id, tag, args, kwargs, stream, env, install_filter=None):
    entry = entries.get(tag)
    if entry is None:
        _send_error(
            ch,
            call_id,
            {
                "code": ENTRYPOINT_ERROR,
                "type": "LookupError",
                "message": "unknown entrypoint tag %r" % tag,
                "traceback": "",
            },
        )
        return
    fn, failure = entry
    if failure is not None:
        _send_error(ch, call_id, failure)
        return
    if install_filter is not None:
        # Fail closed: without the filter the function is not called.
        try:
            install_filter()
        except BaseException as e:
            _send_error(
                ch,
                call_id,
                {
                    "code": SANDBOX_ERROR,
                    "type": type(e).__name__,
                    "message": _head("cannot install the process-creation filter: %s" % _safe_str(e)),
                    "traceback": "",
                },
            )
            return
    os.environ.update(env)

    seq = [0]

    def emit(value):
        n = seq[0]
        ch.send(_encode({"type": "chunk", "id": call_id, "seq": n, "value": value}, "chunk %d" % n))
        seq[0] = n + 1

    try:
        value = _call(fn, args, kwargs, stream, emit)
        payload = _encode({"type": "result", "id": call_id, "value": value}, "result")
    except _ChannelClosed:
        raise
    except _SerializationError as e:
        failure = {"code": SERIALIZATION_ERROR, "type": e.type_name, "message": _head(str(e)), "traceback": ""}
    except _EntrypointError as e:
        failure = {"code": ENTRYPOINT_ERROR, "type": "TypeError", "message": str(e), "traceback": ""}
    except BaseException as e:  # SystemExit and KeyboardInterrupt too
        failure = _failure(AGENT_ERROR, e)
        # Python prints an uncaught exception's traceback to stderr (not
        # for sys.exit); so does this, so that the invocation's logs
        # (runagent db invocation) keep it beside what the agent printed.
        if not isinstance(e, SystemExit):
            try:
                sys.stderr.write(failure["traceback"] or "%s: %s\n" % (failure["type"], failure["message"]))
                sys.stderr.flush()
            except BaseException:
                pass
    else:
        ch.send(payload)
        return
    _send_error(ch, call_id, failure)


# --- protocol ----------------------------------------------------------------


def _parse_init(msg):
    if msg.get("type") != "init":
        raise _ProtocolError("expected an init frame, got %r" % (msg.get("type"),))
    agent_dir = msg.get("agent_dir")
    if not isinstance(agent_dir, str) or not agent_dir:
        raise _ProtocolError("init.agent_dir must be a non-empty string")
    refs = msg.get("entrypoints")
    if refs is None:
        refs = []
    if not isinstance(refs, list):
        raise _ProtocolError("init.entrypoints must be an array")
    for i, ref in enumerate(refs):
        if not isinstance(ref, dict) or not all(
            isinstance(ref.get(k), str) for k in ("tag", "file", "module")
        ):
            raise _ProtocolError("init.entrypoints[%d] must have string tag, file and module" % i)
    env_dir = msg.get("env_dir")
    if env_dir is None:
        env_dir = ""
    if not isinstance(env_dir, str) or "\0" in env_dir:
        raise _ProtocolError("init.env_dir must be a string")
    return agent_dir, refs, env_dir


def _parse_invoke(msg):
    if msg.get("type") != "invoke":
        raise _ProtocolError("expected an invoke frame, got %r" % (msg.get("type"),))
    call_id = msg.get("id")
    tag = msg.get("tag")
    if not isinstance(call_id, str) or not call_id:
        raise _ProtocolError("invoke.id must be a non-empty string")
    if not isinstance(tag, str):
        raise _ProtocolError("invoke.tag must be a string")
    args = msg.get("args")
    args = [] if args is None else args
    kwargs = msg.get("kwargs")
    kwargs = {} if kwargs is None else kwargs
    stream = msg.get("stream", False)
    env = msg.get("env")
    env = {} if env is None else env
    if not isinstance(args, list):
        raise _ProtocolError("invoke.args must be an array")
    if not isinstance(kwargs, dict):
        raise _ProtocolError("invoke.kwargs must be an object")
    if not isinstance(stream, bool):
        raise _ProtocolError("invoke.stream must be a boolean")
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k and "=" not in k and "\0" not in k + v
        for k, v in env.items()
    ):
        raise _ProtocolError("invoke.env must map variable names to strings")
    keep = msg.get("keep", False)
    mark = msg.get("log_mark", "")
    mark = "" if mark is None else mark
    if not isinstance(keep, bool):
        raise _ProtocolError("invoke.keep must be a boolean")
    if not isinstance(mark, str) or len(mark) > 128 or not mark.isprintable():
        raise _ProtocolError("invoke.log_mark must be a printable string of at most 128 characters")
    return (call_id, tag, args, kwargs, stream, env), keep, mark


def _serve(ch, install_filter=None, zygote=None):
    call_id = ""
    try:
        msg = ch.recv()
        if msg is None:
            return  # the host discarded this guest before init
        agent_dir, refs, env_dir = _parse_init(msg)
        entries, statuses = _load(agent_dir, refs, env_dir)
        refusal = zygote.check_forkable() if zygote is not None else ""
        ch.send(_hello(statuses, refusal))
    except _ProtocolError as e:
        _send_error(ch, call_id, {"code": PROTOCOL_ERROR, "type": "ProtocolError", "message": str(e), "traceback": ""})
        return
    if zygote is not None:
        # A fork server: this process serves no call; each "fork" frame
        # makes a run's process (_Zygote.fork), which serves its calls
        # with what was imported here.
        ch = zygote.serve(ch, statuses)
        if ch is None:
            return
        install_filter = None  # the run has installed its filters
    _calls(ch, entries, install_filter)


def _hello(statuses, fork_refused=""):
    v = sys.version_info
    hello = {
        "type": "hello",
        "runtime": "python",
        "version": "%d.%d.%d" % (v[0], v[1], v[2]),
        "entrypoints": statuses,
    }
    if fork_refused:
        hello["fork_refused"] = fork_refused
    return _encode_control(hello)


def _calls(ch, entries, install_filter):
    # One invoke, or a series while the host sets keep (sandbox reuse for
    # one user): each call sees the environment of the process plus its
    # own invoke.env, never a previous call's.
    base_env = dict(os.environ)
    if install_filter is not None:
        install_filter = _once(install_filter)  # a filter stays installed
    while True:
        call_id = ""
        try:
            msg = ch.recv()
            if msg is None:
                return  # the host discarded this guest
            if isinstance(msg.get("id"), str):
                call_id = msg["id"]
            call, keep, mark = _parse_invoke(msg)
        except _ProtocolError as e:
            _send_error(ch, call_id, {"code": PROTOCOL_ERROR, "type": "ProtocolError", "message": str(e), "traceback": ""})
            return
        _invoke(ch, entries, *call, install_filter=install_filter)
        if not keep:
            return
        _flush_std()
        if mark:
            try:
                os.write(2, (mark + "\n").encode())
            except OSError:
                pass
        os.environ.clear()
        os.environ.update(base_env)


def _once(fn):
    done = [False]

    def once():
        if not done[0]:
            fn()
            done[0] = True

    return once


def _flush_std():
    for f in (sys.stdout, sys.stderr):
        try:
            if f is not None:
                f.flush()
        except BaseException:
            pass


def _exit(code):
    _flush_std()
    # Skip interpreter shutdown: the call is over, and an agent's lingering
    # non-daemon thread or atexit handler must not keep the sandbox alive.
    os._exit(code)


# --- fork server (zygote) ----------------------------------------------------
#
# With RUNAGENT_ZYGOTE set (the linux backend's templates, docs/guest-
# protocol.md "Fork server"), this process imports the agent, says hello,
# and then serves no call: each "fork" frame from the host carries four
# descriptors — the run's control channel, its log pipe, a status pipe and
# the waiter's channel — and makes a run:
#
#   zygote --fork--> waiter: new user (its own uid and gid mapped to
#                    themselves), mount, network, IPC, UTS and PID
#                    namespaces; /tmp and /agent become overlays of the
#                    template's with writable layers on the run's own
#                    disk (a fifth descriptor: a detached mount of a
#                    size-capped image) or a tmpfs of its own; then
#          --fork--> run, PID 1 of the new PID namespace: a fresh /proc,
#                    loopback up, the template's landlock ruleset, every
#                    capability dropped, RLIMIT_NPROC, the run's seccomp
#                    filter; it sends "ready" (the host reads its pid from
#                    the socket's credentials and checks it from /proc),
#                    answers the run's init with the template's hello and
#                    serves its invoke like any guest.
#
# The waiter keeps its channel to the host, which the run closes first: until the host closes it, the host may send there one
# "mounts" frame, whose detached mounts the waiter attaches in the run's
# mount namespace (_late_mounts: a pooled run's persistent memory, before
# its invoke). The waiter then writes the run's wait status to the status
# pipe and exits.
#
# What the template wrote to /tmp and beside its code the run sees; what
# the run writes goes to its own layer and vanishes with it. A template
# whose import left threads or processes running, or a file open for
# writing, is not forked (hello says why): the runs would share the file
# or the processes, or lose the threads.

_ZYGOTE_ENV = "RUNAGENT_ZYGOTE"
_FORK_STAGE = "/run/runagent/fork"
_CLONE_NEWNS = 0x00020000
_CLONE_NEWUTS = 0x04000000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_RUN_NAMESPACES = _CLONE_NEWUSER | _CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWIPC | _CLONE_NEWUTS | _CLONE_NEWPID
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18
_MNT_DETACH = 2
_SETUP_FAILED = 125
# What a run mounts anew over the template's (its landlock rules on them
# are made after its mounts: landlock ignores covered mount points).
_RUN_MOUNTS = ("/tmp", "/agent", "/proc")
# A fork frame's "mounts": the run's own read-write directories, at most
# _MAX_RUN_MOUNTS, each strictly below one of _RUN_MOUNT_ROOTS
# (sandbox.CheckMounts on the host says the same).
_MAX_RUN_MOUNTS = 16
_RUN_MOUNT_ROOTS = ("/agent/", "/tmp/")


def _run_mounts(msg):
    """The guest paths of a fork frame's mounts, checked."""
    mounts = msg.get("mounts", [])
    if not isinstance(mounts, list) or len(mounts) > _MAX_RUN_MOUNTS:
        raise _ProtocolError("fork frame's mounts are not a list of at most %d paths" % _MAX_RUN_MOUNTS)
    for m in mounts:
        if (not isinstance(m, str) or not m.startswith(_RUN_MOUNT_ROOTS) or "\x00" in m
                or os.path.normpath(m) != m or m.startswith("//")):
            raise _ProtocolError("fork frame names a bad mount path")
    for i, m in enumerate(mounts):
        for o in mounts[:i]:
            if m == o or m.startswith(o + "/") or o.startswith(m + "/"):
                raise _ProtocolError("fork frame names overlapping mount paths")
    return mounts


def _take_zygote():
    """Returns the fork server's set-up when RUNAGENT_ZYGOTE is set (and
    removes it from the environment), else None."""
    value = os.environ.pop(_ZYGOTE_ENV, None)
    if value is None:
        return None
    return _Zygote(value)


class _Zygote(object):
    def __init__(self, value):
        import ctypes

        opts = {}
        for kv in value.split(","):
            k, _, v = kv.partition("=")
            opts[k] = v
        self.landlock = None
        if "landlock" in opts:
            fd = int(opts["landlock"])
            try:
                self.landlock = _loads(_read_all(fd).decode("utf-8"))
            finally:
                os.close(fd)
        fd = int(opts["seccomp"])
        try:
            self.filter = _read_all(fd)
        finally:
            os.close(fd)
        self.scratch = int(opts.get("scratch", "0")) or (64 << 20)
        self.hostname = opts.get("hostname", "sandbox").encode()
        self.nproc = int(opts.get("nproc", "0"))
        self.egress = opts.get("egress") == "1"
        self.refusal = ""
        libc = ctypes.CDLL(None, use_errno=True)
        self.ctypes = ctypes
        self.libc = libc
        for name, args in (
            ("unshare", [ctypes.c_int]),
            ("mount", [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]),
            ("umount2", [ctypes.c_char_p, ctypes.c_int]),
            ("sethostname", [ctypes.c_char_p, ctypes.c_size_t]),
            ("prctl", [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]),
            ("capset", [ctypes.c_void_p, ctypes.c_void_p]),
        ):
            f = getattr(libc, name)
            f.argtypes = args
            f.restype = ctypes.c_int
        libc.syscall.restype = ctypes.c_long
        self.install_filter = _filter_installer(self.filter)

        class PathBeneath(ctypes.Structure):
            _pack_ = 1
            _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

        self.PathBeneath = PathBeneath
        import resource

        self.resource = resource
        # The rules on what every run shares with the template are opened
        # once, here (a rule holds the inode, the same in the runs' mount
        # namespaces); those on what a run mounts anew, in the run.
        self.ll_static, self.ll_fresh = [], []
        for rule in (self.landlock or {}).get("rules", []):
            if rule["path"] in _RUN_MOUNTS:
                self.ll_fresh.append(rule)
                continue
            try:
                fd = os.open(rule["path"], os.O_PATH | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            self.ll_static.append((fd, self._rule_access(rule, fd)))

    def _check(self, r, what):
        if r != 0:
            e = self.ctypes.get_errno()
            raise OSError(e, "%s: %s" % (what, os.strerror(e)))

    def _mount(self, src, target, fstype, flags, data):
        enc = lambda v: None if v is None else v.encode()
        self._check(self.libc.mount(enc(src), enc(target), enc(fstype), flags, enc(data)), "mount %s" % target)

    def check_forkable(self):
        """Says why this process must not be forked, or ""."""
        try:
            threads = len(os.listdir("/proc/self/task"))
        except OSError as e:
            return "cannot list its threads: %s" % e
        if threads > 1:
            return "the agent's import left %d threads running, which a fork would not copy" % (threads - 1)
        try:
            with open("/proc/self/task/%d/children" % os.getpid()) as f:
                children = f.read().split()
        except OSError as e:
            return "cannot list its child processes: %s" % e
        if children:
            return "the agent's import left %d processes running, which would live on beside every run" % len(children)
        for name in os.listdir("/proc/self/fd"):
            try:
                fd = int(name)
                flags = _fd_flags(fd)
                target = os.readlink("/proc/self/fd/%d" % fd)
            except (OSError, ValueError):
                continue
            if flags & (os.O_WRONLY | os.O_RDWR) and target.startswith(("/tmp", "/agent")):
                return "the agent's import left %s open for writing, which every run would share" % target
        return ""

    def serve(self, ch, statuses):
        """Serves fork frames until the host closes the channel (returns
        None) or, in a forked run, returns the run's channel."""
        import signal
        import socket

        self.refusal = self.check_forkable()  # as in the hello
        # What the import made stays where the runs share it: the
        # collector of a run leaves it alone (no copy-on-write of pages
        # just for its bookkeeping).
        import gc

        gc.freeze()
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the waiters
        sock = socket.socket(fileno=os.dup(ch.fd))
        while True:
            try:
                head, fds, _, _ = socket.recv_fds(sock, 4, 5 + _MAX_RUN_MOUNTS, socket.MSG_CMSG_CLOEXEC)
            except OSError:
                return None
            if not head:
                return None
            if len(head) < 4:
                head += ch._read(4 - len(head), False)
            n = int.from_bytes(head, "big")
            if n > 1 << 16:
                raise _ProtocolError("fork frame of %d bytes" % n)
            try:
                msg = _loads(ch._read(n, False).decode("utf-8"))
            except ValueError as e:
                raise _ProtocolError("fork frame is not valid JSON: %s" % e)
            try:
                mounts = _run_mounts(msg) if isinstance(msg, dict) else None
            except _ProtocolError:
                mounts = None
            if (not isinstance(msg, dict) or msg.get("type") != "fork" or mounts is None
                    or len(fds) - len(mounts) not in (4, 5)):
                for fd in fds:
                    os.close(fd)
                raise _ProtocolError("expected a fork frame with 4 or 5 descriptors and one per mount")
            if self.refusal:
                # The host asked anyway: the run's channel gets the reason.
                _send_error(_Channel(fds[0]), "", {"code": SANDBOX_ERROR, "type": "ForkRefused",
                                                   "message": self.refusal, "traceback": ""})
                for fd in fds:
                    os.close(fd)
                continue
            pid = os.fork()
            if pid == 0:
                sock.close()
                os.close(ch.fd)
                return self._run(fds, mounts, statuses)
            for fd in fds:
                os.close(fd)

    def _run(self, fds, mounts, statuses):
        import signal

        ctl, logw, statusw, waiterc = fds[:4]
        extra = fds[4:]
        disk = extra.pop(0) if len(extra) > len(mounts) else None
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.dup2(logw, 1)
            os.dup2(logw, 2)
            os.close(logw)
            self._namespaces()
            self._layers(disk)
            self._attach_mounts(list(zip(mounts, extra)))
        except BaseException as e:
            _setup_failed("setting up the run", e)
        pid = os.fork()
        if pid:
            # The waiter: holds nothing of the run's but its status and
            # its own channel to the host, on which it attaches the run's
            # late mounts (_late_mounts).
            os.close(ctl)
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 1)
            os.dup2(null, 2)
            self._late_mounts(waiterc, pid)
            status = 0xFF00
            while True:
                try:
                    _, status = os.waitpid(pid, 0)
                    break
                except ChildProcessError:
                    break
                except InterruptedError:
                    continue
            try:
                os.write(statusw, b"%d\n" % status)
            finally:
                os._exit(0)
        os.close(statusw)
        os.close(waiterc)  # the waiter's alone: the run never reaches it
        listener = None
        try:
            self._mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, None)
            self._check(self.libc.sethostname(self.hostname, len(self.hostname)), "sethostname")
            _loopback_up()
            if self.egress:
                listener = _egress_listener()
            self._restrict(mounts)
        except BaseException as e:
            _setup_failed("restricting the run", e)
        fd = _private_fd(ctl)
        ch = _Channel(fd)
        # The host reads this process's pid from the frame's credentials
        # (SO_PASSCRED) and checks its namespaces, capabilities and
        # filters before it sends the init.
        ready = _encode_control({"type": "ready"})
        if listener is None:
            ch.send(ready)
        else:
            import socket

            s = socket.socket(fileno=os.dup(fd))
            s.sendmsg([len(ready).to_bytes(4, "big") + ready], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, listener.fileno().to_bytes(4, sys.byteorder))])
            s.detach()
            listener.close()
        msg = ch.recv()
        if msg is None:
            _exit(0)
        _parse_init(msg)
        ch.send(_hello(statuses))
        return ch

    def _late_mounts(self, fd, run):
        """The waiter's channel to the host: until the host closes it
        (before the run's invoke, or as the run ends), it may carry one
        "mounts" frame, the guest paths of the run's own directories with
        a detached mount for each (SCM_RIGHTS), which the waiter attaches
        as _attach_mounts does at a fork and answers "mounted" or an
        error. The run, idle in the warm pool until then, has its landlock
        ruleset already: landlock's walk from a file in such a mount
        crosses its mount point to the rules on /agent and /tmp. On any
        failure the waiter kills the run (the host would not use it)."""
        import signal
        import socket

        s = socket.socket(fileno=fd)
        fds = []
        # What the frame's handling touches, touched now, ahead of the
        # request: this process's copies of the template's pages are made
        # here, not while the run's caller waits.
        import stat  # noqa: F401 (_attach_mounts)

        _run_mounts(_loads('{"type": "mounts", "mounts": ["/agent/a", "/tmp/b"]}'))
        _encode_control({"type": "mounted"})
        for root in _RUN_MOUNT_ROOTS:
            os.close(os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC))
        try:
            self._move_mount(-1, -1, "")  # EBADF: ctypes' call path only
        except OSError:
            pass
        try:
            try:
                head, fds, _, _ = socket.recv_fds(s, 4, _MAX_RUN_MOUNTS, socket.MSG_CMSG_CLOEXEC)
            except OSError:
                return
            if not head:
                return  # no late mounts
            try:
                while len(head) < 4:
                    more = s.recv(4 - len(head))
                    if not more:
                        raise _ProtocolError("mounts frame cut short")
                    head += more
                n = int.from_bytes(head, "big")
                if n > 1 << 16:
                    raise _ProtocolError("mounts frame of %d bytes" % n)
                body = b""
                while len(body) < n:
                    more = s.recv(n - len(body))
                    if not more:
                        raise _ProtocolError("mounts frame cut short")
                    body += more
                try:
                    msg = _loads(body.decode("utf-8"))
                except ValueError as e:
                    raise _ProtocolError("mounts frame is not valid JSON: %s" % e)
                if not isinstance(msg, dict) or msg.get("type") != "mounts":
                    raise _ProtocolError("expected a mounts frame")
                mounts = _run_mounts(msg)
                if not mounts or len(fds) != len(mounts):
                    raise _ProtocolError("expected a mounts frame with one descriptor per mount")
                pairs, fds = list(zip(mounts, fds)), []
                self._attach_mounts(pairs)
                reply = {"type": "mounted"}
            except BaseException as e:
                os.kill(run, signal.SIGKILL)
                reply = {"type": "error", "message": _safe_str(e)}
            body = _encode_control(reply)
            try:
                s.sendall(len(body).to_bytes(4, "big") + body)
            except OSError:
                pass
        finally:
            for f in fds:
                os.close(f)
            s.close()

    def _namespaces(self):
        uid, gid = os.getuid(), os.getgid()
        self._check(self.libc.unshare(_RUN_NAMESPACES), "unshare")
        for name, text in (("setgroups", "deny"), ("uid_map", "%d %d 1\n" % (uid, uid)), ("gid_map", "%d %d 1\n" % (gid, gid))):
            with open("/proc/self/" + name, "w") as f:
                f.write(text)

    def _layers(self, disk):
        """/tmp and /agent become overlays of the template's, with their
        writable layers on the run's own disk (disk, a detached mount of a
        size-capped image from the host) or else on a tmpfs of its own."""
        self._mount(None, "/", None, _MS_REC | _MS_PRIVATE, None)
        stage = _FORK_STAGE
        if disk is not None:
            MOVE_MOUNT, AT_FDCWD, MOVE_MOUNT_F_EMPTY_PATH = 429, -100, 4  # the same on every architecture
            c = self.ctypes
            r = self.libc.syscall(c.c_long(MOVE_MOUNT), c.c_long(disk), c.c_char_p(b""), c.c_long(AT_FDCWD),
                                  c.c_char_p(stage.encode()), c.c_uint(MOVE_MOUNT_F_EMPTY_PATH))
            self._check(0 if r == 0 else -1, "attaching the run's disk")
            os.close(disk)
        else:
            self._mount("tmpfs", stage, "tmpfs", _MS_NOSUID | _MS_NODEV,
                        "mode=0700,size=%d,uid=%d,gid=%d" % (self.scratch, os.getuid(), os.getgid()))
        for place in ("/tmp", "/agent"):
            st = os.stat(place)
            layer = stage + place
            os.mkdir(layer, 0o700)
            os.mkdir(layer + "/upper", 0o700)
            os.chmod(layer + "/upper", st.st_mode & 0o7777)
            os.mkdir(layer + "/work", 0o700)
            self._mount("overlay", place, "overlay", _MS_NOSUID | _MS_NODEV,
                        "lowerdir=%s,upperdir=%s/upper,workdir=%s/work,userxattr" % (place, layer, layer))
        self._check(self.libc.umount2(stage.encode(), _MNT_DETACH), "umount %s" % stage)
        os.chdir(os.getcwd())  # the working directory: the run's /agent, not the template's

    def _move_mount(self, fd, target_fd, what):
        MOVE_MOUNT, MOVE_MOUNT_F_EMPTY_PATH, MOVE_MOUNT_T_EMPTY_PATH = 429, 4, 0x40  # the same on every architecture
        c = self.ctypes
        r = self.libc.syscall(c.c_long(MOVE_MOUNT), c.c_long(fd), c.c_char_p(b""), c.c_long(target_fd),
                              c.c_char_p(b""), c.c_uint(MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH))
        self._check(0 if r == 0 else -1, what)

    def _attach_mounts(self, mounts):
        """Attaches the run's own directories (detached mounts from the
        host, already nosuid, nodev and noexec) at their guest paths, over
        its /tmp and /agent overlays: what the agent writes there goes to
        the host's directory. Missing directories on the way are made (the
        run's, in its overlay); a way through a symbolic link is refused,
        which the agent's code or its import could have put there."""
        import stat

        for guest, fd in mounts:
            try:
                path = ""
                for name in guest.strip("/").split("/"):
                    path += "/" + name
                    try:
                        st = os.lstat(path)
                    except FileNotFoundError:
                        os.mkdir(path, 0o755)
                        continue
                    if not stat.S_ISDIR(st.st_mode):
                        raise OSError("%s is not a directory (a symbolic link is not followed)" % path)
                target = os.open(guest, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
                try:
                    self._move_mount(fd, target, "attaching the run's mount %s" % guest)
                finally:
                    os.close(target)
            finally:
                os.close(fd)

    def _restrict(self, mounts=()):
        resource = self.resource

        if self.landlock is not None:
            self._landlock(self.landlock, mounts)
        PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 47, 4
        for cap in range(64):
            if self.libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and self.ctypes.get_errno() != 22:
                self._check(-1, "dropping capability %d" % cap)
        self._check(self.libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clearing ambient capabilities")
        header = (self.ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
        data = (self.ctypes.c_uint32 * 6)()
        self._check(self.libc.capset(header, data), "capset")
        if self.nproc > 0:
            resource.setrlimit(resource.RLIMIT_NPROC, (self.nproc, self.nproc))
        self.install_filter()


    def _rule_access(self, rule, fd):
        access = rule["access"]
        if not os.path.isdir("/proc/self/fd/%d" % fd):
            access &= self.landlock["file_mask"]  # only file rights apply to a file
        return access

    def _landlock(self, plan, mounts=()):
        """Makes the run's landlock ruleset from the supervisor's plan, on
        the run's own mounts (its own directories among them, with the
        rights of its /agent), and restricts this process with it."""
        ctypes = self.ctypes
        syscall = self.libc.syscall
        CREATE, ADD, RESTRICT, RULE_PATH_BENEATH = 444, 445, 446, 1
        attr = (ctypes.c_uint64 * 4)(plan["handled"], 0, plan["scoped"], 0)
        ctypes.set_errno(0)
        rfd = syscall(ctypes.c_long(CREATE), ctypes.byref(attr), ctypes.c_size_t(plan["size"]), ctypes.c_uint32(0))
        if rfd < 0:
            self._check(-1, "landlock_create_ruleset")

        def add(fd, access, path):
            pb = self.PathBeneath(access, fd)
            r = syscall(ctypes.c_long(ADD), ctypes.c_long(rfd), ctypes.c_long(RULE_PATH_BENEATH), ctypes.byref(pb), ctypes.c_uint32(0))
            self._check(0 if r == 0 else -1, "landlock_add_rule %s" % path)

        try:
            for fd, access in self.ll_static:
                add(fd, access, "fd %d" % fd)
            rw = [r["access"] for r in self.ll_fresh if r["path"] == "/agent"]
            fresh = self.ll_fresh + [{"path": m, "access": rw[0]} for m in mounts if rw]
            for rule in fresh:
                try:
                    fd = os.open(rule["path"], os.O_PATH | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue
                try:
                    add(fd, self._rule_access(rule, fd), rule["path"])
                finally:
                    os.close(fd)
            r = syscall(ctypes.c_long(RESTRICT), ctypes.c_long(rfd), ctypes.c_uint32(0))
            self._check(0 if r == 0 else -1, "landlock_restrict_self")
        finally:
            os.close(rfd)
            for fd, _ in self.ll_static:
                os.close(fd)  # the run's copies: the agent gets none


def _setup_failed(what, e):
    try:
        os.write(2, ("runagent shim: %s: %s\n" % (what, _safe_str(e))).encode())
    finally:
        os._exit(_SETUP_FAILED)


def _fd_flags(fd):
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_GETFL)


def _loopback_up():
    import fcntl
    import socket
    import struct

    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, struct.pack("16sH22x", b"lo", 0))
        flags = struct.unpack("16sH22x", ifr)[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


def _egress_listener():
    """The run's end of the egress proxy: a listener on the proxy's
    loopback address in the run's network namespace, which the host
    accepts on."""
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 3128))
    s.listen(64)
    return s


def main():
    ch = _Channel(_take_control_fd())
    _stdin_from_devnull()
    install_filter = _take_process_filter()
    zygote = _take_zygote()
    try:
        _serve(ch, install_filter, zygote)
    except _ChannelClosed:
        pass
    _exit(0)


if __name__ == "__main__":
    main()
