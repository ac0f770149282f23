class MockClient:
    def reply(self, prompt):
        return "mock reply to " + prompt
