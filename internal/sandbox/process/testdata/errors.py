# Functions that fail in each way the shim reports.
import asyncio
import os
import sys


def helper(x):
    raise ValueError("bad input: %s" % x)


def raises(x):
    return helper(x)


async def raises_async():
    await asyncio.sleep(0)
    raise KeyError("missing")


def ret_nan():
    return float("nan")


def ret_inf_nested():
    return {"a": [1, float("inf")]}


def ret_object():
    return object()


def ret_set():
    return {1, 2}


def ret_surrogate():
    return "\ud800"


def ret_circular():
    x = []
    x.append(x)
    return x


class BadModel:
    def model_dump(self, mode="python"):
        return "not a dict"


def ret_bad_model():
    return BadModel()


def exits():
    sys.exit(3)


def interrupted():
    raise KeyboardInterrupt


def hard_exit():
    print("exiting hard", file=sys.stderr)
    os._exit(7)


def gen_raises():
    yield 1
    yield 2
    raise RuntimeError("midway")


def gen_bad_chunk():
    yield 1
    yield object()


def ret_int():
    return 5


def ret_str():
    return "abc"


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no")


def raises_unprintable():
    raise Unprintable()
