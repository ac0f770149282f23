"""Test stub of langchain_openai: ChatOpenAI answering "echo: <last
message>" without a network."""

import os


class ChatOpenAI:
    def __init__(self, model=None, api_key=None, **kwargs):
        if not (api_key or os.environ.get("OPENAI_API_KEY")):
            raise RuntimeError("stub langchain_openai: the api_key client option must be set")
        self.model = model

    def invoke(self, messages):
        return _AIMessage("echo: " + _last_text(messages))

    def stream(self, messages):
        for word in ("echo: " + _last_text(messages)).split():
            yield _AIMessage(word + " ")


class _AIMessage:
    def __init__(self, content):
        self.content = content


def _last_text(messages):
    if isinstance(messages, str):
        return messages
    last = messages[-1]
    if isinstance(last, tuple):
        return last[1]
    if isinstance(last, dict):
        return last["content"]
    return last.content
