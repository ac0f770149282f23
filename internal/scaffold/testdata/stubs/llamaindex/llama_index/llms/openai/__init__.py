"""Test stub of llama_index.llms.openai: OpenAI."""


class OpenAI:
    def __init__(self, model="gpt-3.5-turbo", **kwargs):
        self.model = model
