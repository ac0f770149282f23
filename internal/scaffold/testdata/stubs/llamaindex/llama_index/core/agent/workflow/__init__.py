"""Test stub of llama_index.core.agent.workflow: FunctionAgent.run returns
a handler to await for the AgentOutput, or to read stream_events() from
(AgentStream events, a word each) and then await."""

import os
from types import SimpleNamespace


class AgentStream:
    def __init__(self, delta):
        self.delta = delta


class FunctionAgent:
    def __init__(self, tools=None, llm=None, system_prompt=None, **kwargs):
        for tool in tools or []:
            assert callable(tool) and tool.__doc__, "a tool is a function with a docstring"
        self.tools, self.llm, self.system_prompt = tools, llm, system_prompt

    def run(self, user_msg=None, **kwargs):
        if not os.environ.get("OPENAI_API_KEY"):
            raise RuntimeError("stub llama_index: OPENAI_API_KEY is required")
        return _Handler("echo: " + str(user_msg))


class _Handler:
    def __init__(self, reply):
        self.reply = reply

    async def _result(self):
        return SimpleNamespace(response=SimpleNamespace(content=self.reply))

    def __await__(self):
        return self._result().__await__()

    async def stream_events(self):
        yield SimpleNamespace(kind="AgentInput")
        for word in self.reply.split():
            yield AgentStream(word + " ")
