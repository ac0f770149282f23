"""Test stub of the openai package: OpenAI().chat.completions.create,
answering "echo: <last user message>" without a network."""

import os
from types import SimpleNamespace


class OpenAI:
    def __init__(self, api_key=None, **kwargs):
        if not (api_key or os.environ.get("OPENAI_API_KEY")):
            raise RuntimeError("stub openai: the api_key client option must be set")
        self.chat = SimpleNamespace(completions=_Completions())


class _Completions:
    def create(self, model, messages, stream=False, **kwargs):
        assert model, "model is required"
        reply = "echo: " + messages[-1]["content"]
        if not stream:
            return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(role="assistant", content=reply))])
        return iter(
            [SimpleNamespace(choices=[SimpleNamespace(delta=SimpleNamespace(content=word + " "))]) for word in reply.split()]
            + [SimpleNamespace(choices=[SimpleNamespace(delta=SimpleNamespace(content=None))]), SimpleNamespace(choices=[])]
        )
