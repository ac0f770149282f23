"""Unit tests of the shim's internals, run by TestShimUnit as
python3 -I -B shim_test.py SHIM."""

import dataclasses
import json
import math
import sys
import unittest

SHIM = sys.argv.pop(1)


def load_shim(name, block_json_accelerator=False):
    import importlib.util

    saved = sys.modules.get("_json")
    if block_json_accelerator:
        sys.modules["_json"] = None  # makes "import _json" fail
    try:
        spec = importlib.util.spec_from_file_location(name, SHIM)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        if saved is None:
            sys.modules.pop("_json", None)
        else:
            sys.modules["_json"] = saved


shim = load_shim("shim_c")
shim_py = load_shim("shim_py", block_json_accelerator=True)

VALUES = [
    None,
    True,
    0,
    -7,
    2 ** 80,
    1.0,
    -0.0,
    1e300,
    2.5e-12,
    "",
    "plain",
    'quote " backslash \\ newline \n tab \t nul \x00',
    "é ✓ 𝄞",
    [],
    {},
    [1, [2, [3, {}]]],
    {"k": {"nested": [None, False]}, "": 1},
    (1, "tuple"),
    {1: "int key", 2.5: "float key", True: "bool key", None: "none key"},
]

BAD_VALUES = [
    float("nan"),
    float("inf"),
    [float("-inf")],
    object(),
    {1, 2},
    {(1, 2): "tuple key"},
    b"bytes",
]


class CodecTest(unittest.TestCase):
    def test_uses_accelerator(self):
        self.assertIn("_c_codec", shim._loads.__qualname__)
        self.assertIn("_py_codec", shim_py._loads.__qualname__)

    def test_dumps_matches_json(self):
        for ascii_only in (False, True):
            for v in VALUES:
                want = json.dumps(v, ensure_ascii=ascii_only, allow_nan=False, separators=(",", ":"))
                for mod in (shim, shim_py):
                    with self.subTest(value=v, ascii_only=ascii_only, codec=mod.__name__):
                        self.assertEqual(mod._dumps(v, ascii_only), want)

    def test_loads_matches_json(self):
        for v in VALUES:
            text = json.dumps(v)
            for mod in (shim, shim_py):
                with self.subTest(text=text, codec=mod.__name__):
                    self.assertEqual(mod._loads(" \n" + text + "\t "), json.loads(text))

    def test_dumps_rejects(self):
        for v in BAD_VALUES:
            for mod in (shim, shim_py):
                with self.subTest(value=v, codec=mod.__name__):
                    with self.assertRaises((ValueError, TypeError)):
                        mod._dumps(v)

    def test_circular(self):
        x = []
        x.append(x)
        for mod in (shim, shim_py):
            with self.assertRaises(ValueError):
                mod._dumps(x)
            # The codec is still usable afterwards.
            self.assertEqual(mod._dumps([1]), "[1]")

    def test_loads_rejects(self):
        for text in ["", "   ", "NaN", "[Infinity]", "-Infinity", "{} {}", "[1,]", "{'a':1}", '{"a":', "tru", "[1] x"]:
            for mod in (shim, shim_py):
                with self.subTest(text=text, codec=mod.__name__):
                    with self.assertRaises(ValueError):
                        mod._loads(text)

    def test_deep_nesting(self):
        text = "[" * 100000 + "]" * 100000
        for mod in (shim, shim_py):
            with self.assertRaises((ValueError, RecursionError)):
                mod._loads(text)


@dataclasses.dataclass
class Point:
    x: int
    y: list


class V2:
    def model_dump(self, mode="python"):
        return {"mode": mode}


class V2NoMode:
    def model_dump(self):
        return {"no": "mode"}


class V1:
    def dict(self):
        return {"v": 1}


class BadDump:
    def model_dump(self, mode="python"):
        return [1]


class ToJSONTest(unittest.TestCase):
    def test_conversions(self):
        cases = [
            (Point(1, [2.5]), '{"x":1,"y":[2.5]}'),
            ([V2()], '[{"mode":"json"}]'),
            (V2NoMode(), '{"no":"mode"}'),
            (V1(), '{"v":1}'),
        ]
        for value, want in cases:
            with self.subTest(value=value):
                self.assertEqual(shim._encode(value, "result").decode(), want)

    def test_errors(self):
        cases = [
            (BadDump(), "model_dump() returned list"),
            (Point, "object of type type"),
            (object(), "object of type object"),
            (math.nan, "NaN"),
            ("\ud800", "not valid Unicode (a lone surrogate"),
            ({"k": ["ok", "a\udfffb"]}, "lone surrogate"),
            ("\udc00\ud800", "lone surrogate"),  # halves in the wrong order
        ]
        for value, want in cases:
            with self.subTest(value=value):
                with self.assertRaises(shim._SerializationError) as cm:
                    shim._encode(value, "result")
                self.assertIn(want, str(cm.exception))

    def test_surrogate_message_is_sendable(self):
        # The failure frame carrying the message must itself encode.
        with self.assertRaises(shim._SerializationError) as cm:
            shim._encode("\ud800", "chunk 3")
        msg = str(cm.exception)
        self.assertIn("the agent returned text that is not valid Unicode", msg)
        self.assertIn("chunk 3", msg)
        msg.encode("utf-8")


class ModuleNameTest(unittest.TestCase):
    def test_names(self):
        cases = [
            ("/a/main.py", "main"),
            ("/a/pkg/agent.py", "pkg.agent"),
            ("/a/dash-ed.py", "dash_ed"),
            ("/a/1st.py", "_1st"),
            ("/a/v1.2/x.py", "v1_2.x"),
            ("/elsewhere/out.py", "out"),
            ("/a/noext", "noext"),
        ]
        for path, want in cases:
            with self.subTest(path=path):
                self.assertEqual(shim._module_name("/a", path), want)


class StreamableTest(unittest.TestCase):
    def test_streamable(self):
        for ok in ([], (), iter([]), range(3), (x for x in [])):
            shim._check_streamable(ok)
        for bad in ("s", b"b", bytearray(), {}, 1, None, 1.5):
            with self.subTest(value=bad):
                with self.assertRaises(shim._EntrypointError):
                    shim._check_streamable(bad)


if __name__ == "__main__":
    unittest.main(verbosity=1)
