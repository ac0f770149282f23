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


def _take_control_fd():
    """Moves fd 3 to a private, non-inheritable descriptor and closes fd 3,
    so neither the agent (by writing to fd 3) nor its subprocesses (by
    inheriting it) can reach the control channel."""
    try:
        os.fstat(_CONTROL_FD)
    except OSError:
        sys.stderr.write("runagent shim: control channel (fd 3) is not open\n")
        os._exit(2)
    fd = -1
    for n in _PRIVATE_FDS:
        try:
            os.fstat(n)
            continue  # in use
        except OSError:
            pass
        try:
            fd = os.dup2(_CONTROL_FD, n, inheritable=False)
            break
        except OSError:
            continue  # above the descriptor limit
    if fd < 0:
        fd = os.dup(_CONTROL_FD)  # non-inheritable (PEP 446)
    os.close(_CONTROL_FD)
    return fd


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


def _serve(ch, install_filter=None):
    call_id = ""
    try:
        msg = ch.recv()
        if msg is None:
            return  # the host discarded this guest before init
        agent_dir, refs, env_dir = _parse_init(msg)
        entries, statuses = _load(agent_dir, refs, env_dir)
        v = sys.version_info
        ch.send(
            _encode_control(
                {
                    "type": "hello",
                    "runtime": "python",
                    "version": "%d.%d.%d" % (v[0], v[1], v[2]),
                    "entrypoints": statuses,
                }
            )
        )
    except _ProtocolError as e:
        _send_error(ch, call_id, {"code": PROTOCOL_ERROR, "type": "ProtocolError", "message": str(e), "traceback": ""})
        return
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


def main():
    ch = _Channel(_take_control_fd())
    _stdin_from_devnull()
    install_filter = _take_process_filter()
    try:
        _serve(ch, install_filter)
    except _ChannelClosed:
        pass
    _exit(0)


if __name__ == "__main__":
    main()
