"""Test stub of agno.agent: Agent.run answering "echo: <input>", or with
stream=True a RunStarted event, RunContent events (a word each) and a
RunCompleted event holding the whole text."""

import os
from types import SimpleNamespace


class Agent:
    def __init__(self, model=None, instructions=None, **kwargs):
        self.model, self.instructions = model, instructions

    def run(self, input, stream=False, **kwargs):
        if not os.environ.get("OPENAI_API_KEY"):
            raise RuntimeError("stub agno: OPENAI_API_KEY is required")
        reply = "echo: " + str(input)
        if not stream:
            return SimpleNamespace(content=reply)
        return self._events(reply)

    def _events(self, reply):
        yield SimpleNamespace(event="RunStarted", content=None)
        for word in reply.split():
            yield SimpleNamespace(event="RunContent", content=word + " ")
        yield SimpleNamespace(event="RunCompleted", content=reply)
