"""Test stub of langchain_core.output_parsers: StrOutputParser."""

from langchain_core._runnable import Runnable


class StrOutputParser(Runnable):
    def invoke(self, message):
        return message if isinstance(message, str) else message.content
