"""The stub's runnables: invoke, stream and composition with |."""


class Runnable:
    def __or__(self, other):
        return _Sequence([self, other])

    def stream(self, value):
        yield self.invoke(value)


class _Sequence(Runnable):
    def __init__(self, steps):
        self.steps = []
        for step in steps:
            self.steps.extend(step.steps if isinstance(step, _Sequence) else [step])

    def invoke(self, value):
        for step in self.steps:
            value = step.invoke(value)
        return value

    def stream(self, value):
        # Run up to the last step that streams, then pass each of its
        # chunks through the steps after it.
        last = max(i for i, s in enumerate(self.steps) if getattr(s, "streams", False))
        for step in self.steps[:last]:
            value = step.invoke(value)
        for chunk in self.steps[last].stream(value):
            for step in self.steps[last + 1 :]:
                chunk = step.invoke(chunk)
            yield chunk
