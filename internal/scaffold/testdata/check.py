"""Loads an agent project the way runagent's Python runtime does and calls
its entrypoints; the scaffold tests run it with a framework's stubs on
PYTHONPATH.

usage: check.py <project dir> <stubs dir> <keyword> <value>

For every entrypoint of runagent.config.json it imports the entrypoint's
file (each file once) and resolves its module attribute path. Then it
calls the first plain entrypoint and drains the first streaming one with
<keyword>=<value>, running coroutines and async generators. It prints
{"resolved": [tags], "plain": result, "stream": [chunks], "foreign": [modules]}
as JSON, where foreign lists the modules the project imported from
outside the standard library, the stubs and the project.
"""

import asyncio
import contextlib
import importlib.util
import inspect
import json
import os
import sys
import sysconfig


def main():
    # What the agent prints goes to stderr (runagent keeps it as the
    # invocation's log); stdout carries only the result.
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        result = run()
    print(json.dumps(result), file=out)


def run():
    project, stubs, keyword, value = sys.argv[1:5]
    project, stubs = os.path.realpath(project), os.path.realpath(stubs)
    before = set(sys.modules)
    os.chdir(project)
    with open("runagent.config.json") as f:
        config = json.load(f)

    modules = {}
    functions = {}
    for ep in config["agent_architecture"]["entrypoints"]:
        file = ep["file"]
        if file not in modules:
            name = os.path.splitext(file)[0].replace("/", ".")
            spec = importlib.util.spec_from_file_location(name, os.path.join(project, file))
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
            modules[file] = mod
        obj = modules[file]
        for attr in ep["module"].split("."):
            obj = getattr(obj, attr)
        if not callable(obj):
            raise TypeError(f"{ep['tag']}: {ep['module']} is not callable")
        functions[ep["tag"]] = obj

    plain = next(fn for tag, fn in functions.items() if not tag.endswith("_stream"))
    stream = next(fn for tag, fn in functions.items() if tag.endswith("_stream"))
    kwargs = {keyword: value}
    result = plain(**kwargs)
    if inspect.isawaitable(result):
        result = asyncio.run(result)
    chunks = stream(**kwargs)
    if hasattr(chunks, "__aiter__"):

        async def drain():
            return [c async for c in chunks]

        chunks = asyncio.run(drain())
    else:
        chunks = list(chunks)

    allowed = {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"], stubs, project}
    foreign = []
    for name in sorted(set(sys.modules) - before):
        path = getattr(sys.modules[name], "__file__", None)
        if path and not any(os.path.realpath(path).startswith(p + os.sep) for p in allowed):
            foreign.append(name)
    return {"resolved": list(functions), "plain": result, "stream": chunks, "foreign": foreign}


main()
