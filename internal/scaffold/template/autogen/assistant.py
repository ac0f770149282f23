"""An AutoGen AgentChat assistant, written by `runagent init --framework autogen`.

runagent.config.json maps each entrypoint tag to a function in this file:

    chat         -> run()         a plain call (async): returns the reply
    chat_stream  -> run_stream()  a stream (async generator): yields the
                                  reply as the model writes it, because
                                  its tag ends in _stream

Callers pass keyword arguments: `runagent run ... --message=hi` calls
run(message="hi"). The model client is made inside each call and closed
after it, so importing this file needs no key and touches no network.
Give the assistant tools with AssistantAgent(tools=[...]).
"""

import os

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import ModelClientStreamingChunkEvent
from autogen_ext.models.openai import OpenAIChatCompletionClient

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


def build_assistant(stream: bool):
    """Return the assistant and its model client (close it when done)."""
    client = OpenAIChatCompletionClient(model=MODEL)
    assistant = AssistantAgent(
        name="assistant",
        model_client=client,
        system_message=INSTRUCTIONS,
        model_client_stream=stream,
    )
    return assistant, client


async def run(message: str = "hello") -> str:
    """Answer a message."""
    problem = missing_key()
    if problem:
        return problem
    assistant, client = build_assistant(stream=False)
    try:
        result = await assistant.run(task=str(message))
    finally:
        await client.close()
    content = result.messages[-1].content
    return content if isinstance(content, str) else str(content)


async def run_stream(message: str = "hello"):
    """Answer a message, yielding the reply a few words at a time."""
    problem = missing_key()
    if problem:
        yield problem
        return
    assistant, client = build_assistant(stream=True)
    try:
        async for item in assistant.run_stream(task=str(message)):
            if isinstance(item, ModelClientStreamingChunkEvent) and item.content:
                yield item.content
    finally:
        await client.close()
