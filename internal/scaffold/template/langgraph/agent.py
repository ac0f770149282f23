"""The graph: one node that answers a message with a chat model.

State flows START -> respond -> END. Add nodes and edges here (a tool
node, a router with add_conditional_edges, a reviewer) and main.py keeps
working: it only calls the compiled graph.

The model is made inside the node, when the graph runs, so importing this
file needs no key and touches no network.
"""

import os
from typing import TypedDict

from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph

KEY = "OPENAI_API_KEY"
MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
INSTRUCTIONS = "You are a helpful assistant. Answer briefly and plainly."


class State(TypedDict):
    message: str
    reply: str


def missing_key():
    """Return what to do when the API key is not set, or None when it is."""
    if os.environ.get(KEY):
        return None
    return (
        f"{KEY} is not set. Store it as a secret of this agent: "
        f"`runagent secrets set --agent <agent_id> {KEY}` (or put it in .env "
        "next to runagent.config.json before `runagent deploy`); README.md says more."
    )


def respond(state: State) -> dict:
    """Node: ask the model and put its answer in reply."""
    model = ChatOpenAI(model=MODEL)
    answer = model.invoke([("system", INSTRUCTIONS), ("human", state["message"])])
    return {"reply": answer.content}


def build_graph():
    graph = StateGraph(State)
    graph.add_node("respond", respond)
    graph.add_edge(START, "respond")
    graph.add_edge("respond", END)
    return graph.compile()


graph = build_graph()
