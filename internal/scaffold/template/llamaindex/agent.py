"""A LlamaIndex agent, written by `runagent init --framework llamaindex`.

A FunctionAgent with one tool (utc_now): the model calls it when a
question needs the date or time. runagent.config.json maps each
entrypoint tag to a function in this file:

    chat         -> run()         a plain call (async): returns the reply
    chat_stream  -> run_stream()  a stream (async generator): yields the
                                  reply as it is written, because its tag
                                  ends in _stream

Callers pass keyword arguments: `runagent run ... --message=hi` calls
run(message="hi"). The agent is made inside each call, so importing this
file needs no key and touches no network.
"""

import os
from datetime import datetime, timezone

from llama_index.core.agent.workflow import AgentStream, FunctionAgent
from llama_index.llms.openai import OpenAI

KEY = "OPENAI_API_KEY"
MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
INSTRUCTIONS = "You are a helpful assistant. Answer briefly and plainly."


def missing_key():
    """Return what to do when the API key is not set, or None when it is."""
    if os.environ.get(KEY):
        return None
    return (
        f"{KEY} is not set. Store it as a secret of this agent: "
        f"`runagent secrets set --agent <agent_id> {KEY}` (or put it in .env "
        "next to runagent.config.json before `runagent deploy`); README.md says more."
    )


def utc_now() -> str:
    """Return the current date and time in UTC, in ISO 8601 form."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def build_agent() -> FunctionAgent:
    return FunctionAgent(tools=[utc_now], llm=OpenAI(model=MODEL), system_prompt=INSTRUCTIONS)


async def run(message: str = "hello") -> str:
    """Answer a message."""
    problem = missing_key()
    if problem:
        return problem
    result = await build_agent().run(user_msg=str(message))
    return str(result.response.content or "")


async def run_stream(message: str = "hello"):
    """Answer a message, yielding the reply a few words at a time."""
    problem = missing_key()
    if problem:
        yield problem
        return
    handler = build_agent().run(user_msg=str(message))
    async for event in handler.stream_events():
        if isinstance(event, AgentStream) and event.delta:
            yield event.delta
    await handler
