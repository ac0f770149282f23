"""Test stub of langchain_core.prompts: ChatPromptTemplate.from_messages
with (role, template) pairs filled in with str.format."""

from langchain_core._runnable import Runnable


class ChatPromptTemplate(Runnable):
    def __init__(self, messages):
        self.messages = messages

    @classmethod
    def from_messages(cls, messages):
        return cls(list(messages))

    def invoke(self, values):
        return [(role, text.format(**values)) for role, text in self.messages]
