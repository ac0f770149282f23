"""An Agno agent, written by `runagent init --framework agno`.

runagent.config.json maps each entrypoint tag to a function in this file:

    chat         -> run()         a plain call: returns the reply
    chat_stream  -> run_stream()  a stream: yields the reply as it is
                                  written, because its tag ends in _stream

Callers pass keyword arguments: `runagent run ... --message=hi` calls
run(message="hi"). The agent is made inside each call, so importing this
file needs no key and touches no network. Give it tools with
Agent(tools=[...]).
"""

import os

from agno.agent import Agent
from agno.models.openai import OpenAIChat

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


def build_agent() -> Agent:
    return Agent(model=OpenAIChat(id=MODEL), instructions=INSTRUCTIONS, markdown=True)


def run(message: str = "hello") -> str:
    """Answer a message."""
    problem = missing_key()
    if problem:
        return problem
    response = build_agent().run(str(message))
    return response.content


def run_stream(message: str = "hello"):
    """Answer a message, yielding the reply a few words at a time."""
    problem = missing_key()
    if problem:
        yield problem
        return
    for event in build_agent().run(str(message), stream=True):
        if getattr(event, "event", None) == "RunContent" and isinstance(event.content, str) and event.content:
            yield event.content
