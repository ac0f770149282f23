"""Test stub of autogen_ext.models.openai: OpenAIChatCompletionClient."""

import os


class OpenAIChatCompletionClient:
    def __init__(self, model, api_key=None, **kwargs):
        if not (api_key or os.environ.get("OPENAI_API_KEY")):
            raise RuntimeError("stub autogen_ext: the api_key client option must be set")
        self.model = model
        self.closed = False

    async def close(self):
        self.closed = True
