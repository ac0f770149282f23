"""A LangChain chain, written by `runagent init --framework langchain`.

The chain is prompt | model | parser. runagent.config.json maps each
entrypoint tag to a function in this file:

    chat         -> run()         a plain call: returns the reply
    chat_stream  -> run_stream()  a stream: yields the reply as it is
                                  written, because its tag ends in _stream

Callers pass keyword arguments: `runagent run ... --message=hi` calls
run(message="hi"). The model is made inside each call, so importing this
file needs no key and touches no network.
"""

import os

from langchain.chat_models import init_chat_model
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

KEY = "OPENAI_API_KEY"
MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")

PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "You are a helpful assistant. Answer briefly and plainly."),
        ("human", "{message}"),
    ]
)


def missing_key():
    """Return what to do when the API key is not set, or None when it is."""
    if os.environ.get(KEY):
        return None
    return (
        f"{KEY} is not set. Store it as a secret of this agent: "
        f"`runagent secrets set --agent <agent_id> {KEY}` (or put it in .env "
        "next to runagent.config.json before `runagent deploy`); README.md says more."
    )


def build_chain():
    model = init_chat_model(MODEL, model_provider="openai")
    return PROMPT | model | StrOutputParser()


def run(message: str = "hello") -> str:
    """Answer a message."""
    problem = missing_key()
    if problem:
        return problem
    return build_chain().invoke({"message": str(message)})


def run_stream(message: str = "hello"):
    """Answer a message, yielding the reply a few words at a time."""
    problem = missing_key()
    if problem:
        yield problem
        return
    for piece in build_chain().stream({"message": str(message)}):
        if piece:
            yield piece
