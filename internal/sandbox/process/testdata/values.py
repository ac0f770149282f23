# Functions returning every kind of JSON value, and the conversions the
# shim makes (tuples, dataclasses, pydantic-style models, generators,
# coroutines).
import asyncio
import dataclasses
import os


@dataclasses.dataclass
class Point:
    x: int
    y: float
    tags: tuple


class ModelV2:
    """Quacks like a pydantic v2 model."""

    def model_dump(self, mode="python"):
        return {"v": 2, "mode": mode, "nested": Point(1, 0.5, ())}


class ModelV1:
    """Quacks like a pydantic v1 model."""

    def dict(self):
        return {"v": 1}


def ret_dict():
    return {"a": 1, "b": [1, 2.5, None], "c": {"d": True}}


def ret_list():
    return [1, "two", 3.0, False, None]


def ret_str():
    return "héllo ✓ \"quoted\"\n"


def ret_int():
    return 42


def ret_big_int():
    return 2 ** 70


def ret_negative_float():
    return -1.5e-07


def ret_float():
    return 1.0


def ret_true():
    return True


def ret_none():
    return None


def ret_tuple():
    return (1, "a", (2,))


def ret_dataclass():
    return Point(1, 2.5, (3, 4))


def ret_model_v2():
    return ModelV2()


def ret_model_v1():
    return [ModelV1()]


def ret_generator():
    yield from range(3)


async def ret_async(x):
    await asyncio.sleep(0.001)
    return x * 2


def ret_coroutine():
    return ret_async(21)


async def ret_async_generator():
    for i in range(2):
        await asyncio.sleep(0)
        yield i


def echo(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


def getenv(*names):
    return {n: os.environ.get(n) for n in names}


class Agent:
    prefix = "p-"

    def run(self, x):
        return self.prefix + x


agent = Agent()
