"""Test agent for runagent's end-to-end tests (standard library only)."""
import asyncio
import os
import sys
import time

VALUES = {
    "string": "héllo \"world\"",
    "integer": 42,
    "number": 2.5,
    "boolean": True,
    "array": [1, "two", 3.0, None],
    "object": {"a": 1, "nested": {"b": [True, False]}},
    "null": None,
    "lone_surrogate": "half a pair: \ud800",  # not Unicode text: cannot be sent
}


def value_of(kind):
    return VALUES[kind]


def values_stream():
    for kind in ("string", "integer", "number", "boolean", "array", "object", "null"):
        yield VALUES[kind]


def slow_stream(n=3, delay=0.3):
    for i in range(n):
        yield {"i": i, "t": time.time()}
        time.sleep(delay)


async def async_value(x=1):
    await asyncio.sleep(0.01)
    return {"x": x, "greeting": os.environ.get("GREETING")}


class Bot:
    @staticmethod
    def echo(*args, **kwargs):
        return {"args": list(args), "kwargs": kwargs}


def raises(message="boom"):
    raise ValueError(message)


def returns_nan():
    return float("nan")


def unserializable():
    return object()


def chatty():
    for i in range(2000):
        print("line", i, "x" * 50)
    print("to stderr", file=sys.stderr)
    return "done"


def sleeps(seconds=30):
    time.sleep(seconds)
    return "woke"


def exits():
    sys.exit(3)


def hard_exit():
    sys.stdout.flush()
    os._exit(7)


def surrogate_stream():
    yield "fine"
    yield "half a pair: \udc00"


def raises_stream():
    yield 1
    raise RuntimeError("stream broke")


def uses_secret(name="API_TOKEN", leak=False):
    value = os.environ.get(name)
    print(f"the token is {value}", file=sys.stderr, flush=True)
    if leak:
        raise RuntimeError(f"refused token {value}")
    return {"present": value is not None, "length": len(value or "")}


def spins(seconds=30):
    """Keep a core busy, never yielding to anything, for seconds."""
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n
