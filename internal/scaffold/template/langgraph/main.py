"""Entrypoints of the LangGraph agent, written by `runagent init --framework langgraph`.

runagent.config.json maps each entrypoint tag to a function in this file:

    chat         -> invoke()   a plain call: runs the graph, returns the reply
    chat_stream  -> stream()   a stream: yields the model's tokens as the
                               graph runs, because its tag ends in _stream

Callers pass keyword arguments: `runagent run ... --message=hi` calls
invoke(message="hi"). The graph itself is in agent.py.
"""

from agent import graph, missing_key


def invoke(message: str = "hello") -> str:
    """Run the graph on a message and return the reply."""
    problem = missing_key()
    if problem:
        return problem
    result = graph.invoke({"message": str(message), "reply": ""})
    return result["reply"]


def stream(message: str = "hello"):
    """Run the graph on a message, yielding the reply token by token."""
    problem = missing_key()
    if problem:
        yield problem
        return
    for token, _metadata in graph.stream({"message": str(message), "reply": ""}, stream_mode="messages"):
        if token.content:
            yield token.content
