"""Test stub of langchain.chat_models: init_chat_model for the openai
provider, a chat model answering "echo: <last message>"."""

import os

from langchain_core._runnable import Runnable


def init_chat_model(model=None, *, model_provider=None, **kwargs):
    if model_provider != "openai" and not str(model).startswith("openai:"):
        raise ValueError(f"stub init_chat_model: unsupported provider {model_provider!r}")
    if not os.environ.get("OPENAI_API_KEY"):
        raise RuntimeError("stub langchain: the api_key client option must be set")
    return _ChatModel()


class _ChatModel(Runnable):
    streams = True

    def invoke(self, messages):
        return _AIMessage("echo: " + messages[-1][1])

    def stream(self, messages):
        for word in ("echo: " + messages[-1][1]).split():
            yield _AIMessage(word + " ")


class _AIMessage:
    def __init__(self, content):
        self.content = content
