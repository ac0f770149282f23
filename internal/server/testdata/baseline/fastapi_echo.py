"""The FastAPI + uvicorn baseline of BenchmarkEchoThroughput.

A server of RunAgent's shape as one would write it with FastAPI, without
a sandbox: one process, one event loop (uvicorn, asyncio loop, h11), an
API key checked on every request (Authorization: Bearer, compared in
constant time), POST /api/v1/agents/{agent_id}/run calling the agent's
echo function in the server's own process, one SQLite commit per run (an
invocation row; WAL journal, synchronous=FULL, so each COMMIT syncs the
log as runagent's audit commits do), and RunAgent's response envelope
with the result as a structured string.

Run by the Go benchmark, not by hand:

    BASELINE_API_KEY=... /usr/bin/python3 fastapi_echo.py AGENT_ID DB_PATH

It serves on the listening socket it inherits as file descriptor 3 (the
benchmark binds a free loopback port and hands it over, so there is no
race for the port) and stops on SIGTERM. Only Debian's packages are
used: python3-fastapi and python3-uvicorn.
"""

import datetime
import hmac
import json
import os
import socket
import sqlite3
import sys
import time
import uuid
from typing import Any, Dict, List, Optional

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel


def echo(*args, **kwargs):
    """The agent: examples/hello's echo entrypoint."""
    return {"args": list(args), "kwargs": kwargs}


ENTRYPOINTS = {"echo": echo}


class RunRequest(BaseModel):
    """The body RunAgent's SDKs send to /run."""

    entrypoint_tag: str
    input_args: List[Any] = []
    input_kwargs: Dict[str, Any] = {}
    timeout_seconds: Optional[float] = None
    async_execution: bool = False
    user_id: Optional[str] = None
    persistent_memory: bool = False


def structured(value):
    """RunAgent's structured string: {"type", "payload"} as JSON text."""
    if value is None:
        kind = "null"
    elif isinstance(value, bool):
        kind = "boolean"
    elif isinstance(value, int):
        kind = "integer"
    elif isinstance(value, float):
        kind = "number"
    elif isinstance(value, str):
        kind = "string"
    elif isinstance(value, (list, tuple)):
        kind = "array"
    else:
        kind = "object"
    return json.dumps({"type": kind, "payload": json.dumps(value, allow_nan=False)})


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def envelope(status, success, data=None, error=None, invocation_id=None):
    body = {
        "success": success,
        "data": data,
        "message": None,
        "error": error,
        "timestamp": now(),
        "request_id": uuid.uuid4().hex,
    }
    if invocation_id:
        body["invocation_id"] = invocation_id
    return JSONResponse(body, status_code=status)


def refusal(status, code, message):
    return envelope(status, False, error={"code": code, "message": message, "details": None, "field": None})


agent_id = sys.argv[1]
api_key = os.environ.pop("BASELINE_API_KEY").encode()
db = sqlite3.connect(sys.argv[2], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=FULL")
db.execute(
    """CREATE TABLE IF NOT EXISTS invocations (
        id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, entrypoint_tag TEXT NOT NULL,
        status TEXT NOT NULL, input TEXT NOT NULL, output TEXT, error TEXT,
        created_at TEXT NOT NULL, finished_at TEXT NOT NULL, duration_ms REAL NOT NULL)"""
)

app = FastAPI()


@app.get("/api/v1/health")
async def health():
    return {"status": "healthy", "server": "fastapi-baseline", "timestamp": now()}


@app.post("/api/v1/agents/{agent}/run")
async def run(agent: str, body: RunRequest, request: Request):
    auth = request.headers.get("authorization", "")
    if not auth.startswith("Bearer ") or not hmac.compare_digest(auth[7:].encode(), api_key):
        return refusal(401, "AUTHENTICATION_ERROR", "a valid API key is required")
    if agent != agent_id:
        return refusal(404, "AGENT_NOT_FOUND", "no such agent")
    fn = ENTRYPOINTS.get(body.entrypoint_tag)
    if fn is None:
        return refusal(404, "ENTRYPOINT_NOT_FOUND", "no such entrypoint")
    invocation_id = str(uuid.uuid4())
    created, start = now(), time.perf_counter()
    try:
        output, error, status = structured(fn(*body.input_args, **body.input_kwargs)), None, "completed"
    except Exception as e:  # the agent's failure: HTTP 200, success false
        output, error, status = None, {"code": "AGENT_ERROR", "message": str(e), "details": None, "field": None}, "failed"
    db.execute("BEGIN")
    db.execute(
        "INSERT INTO invocations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (invocation_id, agent, body.entrypoint_tag, status,
         json.dumps({"args": body.input_args, "kwargs": body.input_kwargs}),
         output, json.dumps(error) if error else None, created, now(),
         (time.perf_counter() - start) * 1000),
    )
    db.execute("COMMIT")
    return envelope(200, error is None, data=output, error=error, invocation_id=invocation_id)


if __name__ == "__main__":
    listener = socket.socket(fileno=3)
    config = uvicorn.Config(app, loop="asyncio", http="h11", lifespan="off", log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[listener])
