"""An AG2 (formerly AutoGen) conversable agent, written by `runagent init --framework ag2`.

runagent.config.json maps each entrypoint tag to a function in this file:

    chat         -> invoke()  a plain call: returns the assistant's reply
    chat_stream  -> stream()  a stream: yields each message of the
                              conversation as it is sent, because its tag
                              ends in _stream

Callers pass keyword arguments: `runagent run ... --message=hi` calls
invoke(message="hi"). The agent is made inside each call, so importing
this file needs no key and touches no network.
"""

import os

from autogen import ConversableAgent, LLMConfig

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


def build_assistant() -> ConversableAgent:
    llm_config = LLMConfig({"api_type": "openai", "model": MODEL, "api_key": os.environ[KEY]})
    return ConversableAgent(
        name="assistant",
        system_message=INSTRUCTIONS,
        llm_config=llm_config,
        human_input_mode="NEVER",
    )


def invoke(message: str = "hello") -> str:
    """Answer a message."""
    problem = missing_key()
    if problem:
        return problem
    reply = build_assistant().generate_reply(messages=[{"role": "user", "content": str(message)}])
    if isinstance(reply, dict):
        reply = reply.get("content")
    return reply or ""


def stream(message: str = "hello"):
    """Answer a message, yielding the assistant's messages as they are sent."""
    problem = missing_key()
    if problem:
        yield problem
        return
    assistant = build_assistant()
    response = assistant.run(message=str(message), max_turns=1, user_input=False)
    for event in response.events:
        if event.type == "text" and event.content.sender == assistant.name:
            yield event.content.content
