"""A CrewAI crew, written by `runagent init --framework crewai`.

Two agents work in turn: a researcher lists the key facts about a topic,
a writer turns them into a short answer. runagent.config.json maps each
entrypoint tag to a function in this file:

    chat         -> run()         a plain call: returns the writer's answer
    chat_stream  -> run_stream()  a stream: yields each task's output as
                                  soon as it is done, because its tag ends
                                  in _stream

Callers pass keyword arguments: `runagent run ... --topic="solar power"`
calls run(topic="solar power"); {topic} in the agents' and tasks' text is
filled in from it. The crew is made inside each call, so importing this
file needs no key and touches no network.
"""

import os
import queue
import threading

from crewai import Agent, Crew, Task

KEY = "OPENAI_API_KEY"
MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")


def missing_key():
    """Return what to do when the API key is not set, or None when it is."""
    if os.environ.get(KEY):
        return None
    return (
        f"{KEY} is not set. Store it as a secret of this agent: "
        f"`runagent secrets set --agent <agent_id> {KEY}` (or put it in .env "
        "next to runagent.config.json before `runagent deploy`); README.md says more."
    )


def build_crew(task_callback=None) -> Crew:
    researcher = Agent(
        role="Researcher",
        goal="Find the facts that matter most about {topic}",
        backstory="You check what you say and keep only what is well established.",
        llm=MODEL,
    )
    writer = Agent(
        role="Writer",
        goal="Explain {topic} clearly to a newcomer",
        backstory="You write short, plain answers without jargon.",
        llm=MODEL,
    )
    research = Task(
        description="List the five most important facts about {topic}.",
        expected_output="Five short bullet points.",
        agent=researcher,
    )
    write = Task(
        description="Using the research, write a short answer about {topic}.",
        expected_output="Two short paragraphs.",
        agent=writer,
        context=[research],
    )
    return Crew(agents=[researcher, writer], tasks=[research, write], task_callback=task_callback)


def run(topic: str = "the history of the bicycle") -> str:
    """Research a topic and return the written answer."""
    problem = missing_key()
    if problem:
        return problem
    result = build_crew().kickoff(inputs={"topic": str(topic)})
    return result.raw


def run_stream(topic: str = "the history of the bicycle"):
    """Research a topic, yielding each task's output as it finishes:
    {"task": ..., "agent": ..., "output": ...}."""
    problem = missing_key()
    if problem:
        yield problem
        return
    events = queue.Queue()

    def work():
        try:
            crew = build_crew(task_callback=lambda output: events.put(("task", output)))
            crew.kickoff(inputs={"topic": str(topic)})
            events.put(("done", None))
        except BaseException as e:  # handed to the caller below
            events.put(("error", e))

    threading.Thread(target=work, daemon=True).start()
    while True:
        kind, value = events.get()
        if kind == "error":
            raise value
        if kind == "done":
            return
        yield {
            "task": value.name or value.description,
            "agent": str(value.agent),
            "output": value.raw,
        }
