"""Test stub of letta_client: Letta with agents.create and
agents.messages.create (plain, or streaming=True), the agent answering
"echo: <message>"."""

from types import SimpleNamespace


class Letta:
    def __init__(self, api_key=None, base_url=None, **kwargs):
        if not (api_key or base_url):
            raise RuntimeError("stub letta_client: api_key or base_url must be set")
        self.agents = _Agents()


class _Agents:
    def __init__(self):
        self.messages = _Messages(self)
        self.created = {}

    def create(self, model=None, memory_blocks=None, name=None, **kwargs):
        agent = SimpleNamespace(id=f"agent-{len(self.created) + 1}", name=name, model=model)
        self.created[agent.id] = agent
        return agent


class _Messages:
    def __init__(self, agents):
        self.agents = agents

    def create(self, agent_id, messages=None, streaming=False, stream_tokens=False, **kwargs):
        assert agent_id, "agent_id is required"
        reply = "echo: " + messages[-1]["content"]
        reasoning = SimpleNamespace(message_type="reasoning_message", reasoning="thinking")
        if not streaming:
            answer = SimpleNamespace(message_type="assistant_message", content=reply)
            return SimpleNamespace(messages=[reasoning, answer])
        chunks = reply.split() if stream_tokens else [reply]
        return iter(
            [reasoning]
            + [SimpleNamespace(message_type="assistant_message", content=c + " ") for c in chunks]
            + [SimpleNamespace(message_type="stop_reason", stop_reason="end_turn")]
        )
