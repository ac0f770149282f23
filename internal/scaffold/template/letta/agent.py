"""A Letta agent, written by `runagent init --framework letta`.

Letta agents are stateful and live on a Letta server (Letta Cloud, or one
you run): this file is a client of it. runagent.config.json maps each
entrypoint tag to a function in this file:

    chat         -> chat()         a plain call: returns the agent's reply
    chat_stream  -> chat_stream()  a stream: yields the reply as it is
                                   written, because its tag ends in _stream

Callers pass keyword arguments: `runagent run ... --message=hi` calls
chat(message="hi"). The agent is the one named by LETTA_AGENT_ID; without
it, one is created on the first call and kept for the life of the sandbox
(its id is in the server's log; pin it with LETTA_AGENT_ID). The client is
made inside each call, so importing this file needs no key and touches no
network.
"""

import os

from letta_client import Letta

KEY = "LETTA_API_KEY"
MODEL = os.environ.get("LETTA_MODEL", "openai/gpt-4o-mini")
PERSONA = "I am a helpful assistant. I answer briefly and plainly."

_created_agent_id = None


def missing_key():
    """Return what to do when neither an API key nor a server is set, or
    None when one is."""
    if os.environ.get(KEY) or os.environ.get("LETTA_BASE_URL"):
        return None
    return (
        f"{KEY} is not set. Store it as a secret of this agent: "
        f"`runagent secrets set --agent <agent_id> {KEY}` (or put it in .env "
        "next to runagent.config.json before `runagent deploy`); for a Letta "
        "server of your own set LETTA_BASE_URL instead. README.md says more."
    )


def _client() -> Letta:
    base_url = os.environ.get("LETTA_BASE_URL")
    if base_url:
        return Letta(base_url=base_url, api_key=os.environ.get(KEY))
    return Letta(api_key=os.environ[KEY])


def _agent_id(client: Letta) -> str:
    global _created_agent_id
    pinned = os.environ.get("LETTA_AGENT_ID")
    if pinned:
        return pinned
    if _created_agent_id is None:
        agent = client.agents.create(
            name="runagent-chat",
            model=MODEL,
            memory_blocks=[
                {"label": "persona", "value": PERSONA},
                {"label": "human", "value": "Nothing is known about the user yet."},
            ],
        )
        _created_agent_id = agent.id
        print(f"created Letta agent {agent.id}; set LETTA_AGENT_ID to keep using it")
    return _created_agent_id


def _text(content) -> str:
    """The text of an assistant message: a string or a list of parts."""
    if isinstance(content, str):
        return content
    return "".join(getattr(part, "text", "") or "" for part in content or [])


def _user(message):
    return [{"role": "user", "content": str(message)}]


def chat(message: str = "hello") -> str:
    """Send a message to the agent and return its reply."""
    problem = missing_key()
    if problem:
        return problem
    client = _client()
    response = client.agents.messages.create(agent_id=_agent_id(client), messages=_user(message))
    return "".join(
        _text(m.content) for m in response.messages if getattr(m, "message_type", None) == "assistant_message"
    )


def chat_stream(message: str = "hello"):
    """Send a message to the agent, yielding its reply a few words at a time."""
    problem = missing_key()
    if problem:
        yield problem
        return
    client = _client()
    stream = client.agents.messages.create(
        agent_id=_agent_id(client), messages=_user(message), streaming=True, stream_tokens=True
    )
    for chunk in stream:
        if getattr(chunk, "message_type", None) == "assistant_message":
            text = _text(chunk.content)
            if text:
                yield text
