"""Test stub of ag2's autogen package: LLMConfig and ConversableAgent with
generate_reply ("echo: <last message>") and run (events of a one-turn
chat: the user's message, the assistant's reply, then run_completion)."""

from types import SimpleNamespace


class LLMConfig:
    def __init__(self, *configs, **kwargs):
        assert configs, "LLMConfig needs at least one config entry"
        for c in configs:
            assert c.get("model") and c.get("api_key"), "a config entry needs model and api_key"
        self.config_list = list(configs)


class ConversableAgent:
    def __init__(self, name, system_message=None, llm_config=None, human_input_mode="TERMINATE", **kwargs):
        assert isinstance(llm_config, LLMConfig), "llm_config must be an LLMConfig"
        self.name, self.system_message, self.llm_config = name, system_message, llm_config
        self.human_input_mode = human_input_mode

    def generate_reply(self, messages=None, **kwargs):
        return "echo: " + messages[-1]["content"]

    def run(self, message, max_turns=None, user_input=True, **kwargs):
        assert not user_input, "the stub cannot answer input requests"
        reply = self.generate_reply(messages=[{"role": "user", "content": message}])
        events = [
            SimpleNamespace(type="text", content=SimpleNamespace(sender="user", recipient=self.name, content=message)),
            SimpleNamespace(type="text", content=SimpleNamespace(sender=self.name, recipient="user", content=reply)),
            SimpleNamespace(type="run_completion", content=SimpleNamespace(summary=reply)),
        ]
        return SimpleNamespace(events=iter(events))
