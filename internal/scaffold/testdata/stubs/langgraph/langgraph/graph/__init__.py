"""Test stub of langgraph.graph: StateGraph with nodes and plain edges,
START and END. Running the graph calls each node in turn and merges its
update into the state."""

START = "__start__"
END = "__end__"


class StateGraph:
    def __init__(self, state_schema):
        self.state_schema = state_schema
        self.nodes = {}
        self.edges = {}

    def add_node(self, name, fn):
        assert name not in self.nodes, f"node {name} added twice"
        self.nodes[name] = fn
        return self

    def add_edge(self, start, end):
        self.edges[start] = end
        return self

    def compile(self):
        assert START in self.edges, "graph has no entry point"
        for start, end in self.edges.items():
            assert start == START or start in self.nodes, f"edge from unknown node {start}"
            assert end == END or end in self.nodes, f"edge to unknown node {end}"
        return _Compiled(self)


class _Compiled:
    def __init__(self, graph):
        self.graph = graph

    def _steps(self, state):
        state = dict(state)
        node = self.graph.edges[START]
        while node != END:
            update = self.graph.nodes[node](state)
            state.update(update)
            yield node, update, state
            node = self.graph.edges[node]

    def invoke(self, state):
        for _, _, state in self._steps(state):
            pass
        return state

    def stream(self, state, stream_mode="values"):
        for node, update, state in self._steps(state):
            if stream_mode == "updates":
                yield {node: update}
            elif stream_mode == "values":
                yield state
            elif stream_mode == "messages":
                # The real graph relays the chat model's tokens; the stub
                # sends each word of the node's text values.
                for value in update.values():
                    for word in str(value).split():
                        yield _Chunk(word + " "), {"langgraph_node": node}
            else:
                raise ValueError(f"unknown stream_mode {stream_mode!r}")


class _Chunk:
    def __init__(self, content):
        self.content = content
