"""Test stub of autogen_agentchat.agents: AssistantAgent.run returns a
TaskResult whose last message is "echo: <task>"; run_stream yields
streaming chunks (with model_client_stream), the final message and the
TaskResult."""

from types import SimpleNamespace

from autogen_agentchat.messages import ModelClientStreamingChunkEvent


class AssistantAgent:
    def __init__(self, name, model_client, system_message=None, model_client_stream=False, **kwargs):
        self.name, self.model_client = name, model_client
        self.system_message, self.model_client_stream = system_message, model_client_stream

    async def run(self, task):
        assert not self.model_client.closed, "model client used after close"
        return self._result(task)

    def _result(self, task):
        messages = [
            SimpleNamespace(source="user", content=task),
            SimpleNamespace(source=self.name, content="echo: " + task),
        ]
        return SimpleNamespace(messages=messages, stop_reason=None)

    async def run_stream(self, task):
        assert not self.model_client.closed, "model client used after close"
        result = self._result(task)
        yield result.messages[0]
        if self.model_client_stream:
            for word in result.messages[-1].content.split():
                yield ModelClientStreamingChunkEvent(self.name, word + " ")
        yield result.messages[-1]
        yield result
