"""Test stub of agno.models.openai: OpenAIChat."""


class OpenAIChat:
    def __init__(self, id="gpt-4o", **kwargs):
        self.id = id
