"""Test stub of autogen_agentchat.messages: ModelClientStreamingChunkEvent."""


class ModelClientStreamingChunkEvent:
    def __init__(self, source, content):
        self.source, self.content = source, content
