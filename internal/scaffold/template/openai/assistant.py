"""A chat assistant on the OpenAI API, written by `runagent init --framework openai`.

runagent.config.json maps each entrypoint tag to a function in this file:

    chat         -> get_response()         a plain call: returns the reply
    chat_stream  -> get_response_stream()  a stream: yields the reply as it
                                           is written, because its tag ends
                                           in _stream

Callers pass keyword arguments: `runagent run ... --message=hi` calls
get_response(message="hi"). The client is made inside each call, so
importing this file needs no key and touches no network.
"""

import os

from openai import OpenAI

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


def _messages(message):
    return [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": str(message)},
    ]


def get_response(message: str = "hello") -> str:
    """Answer a message."""
    problem = missing_key()
    if problem:
        return problem
    client = OpenAI()
    completion = client.chat.completions.create(model=MODEL, messages=_messages(message))
    return completion.choices[0].message.content or ""


def get_response_stream(message: str = "hello"):
    """Answer a message, yielding the reply a few words at a time."""
    problem = missing_key()
    if problem:
        yield problem
        return
    client = OpenAI()
    stream = client.chat.completions.create(model=MODEL, messages=_messages(message), stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            yield chunk.choices[0].delta.content
