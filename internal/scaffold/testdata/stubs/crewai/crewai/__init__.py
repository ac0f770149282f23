"""Test stub of crewai: Agent, Task and Crew. kickoff fills {inputs} into
the tasks, "runs" them in order (each output is "echo: <description>"),
calls task_callback after each, and returns the last output."""

import os
from types import SimpleNamespace


class Agent:
    def __init__(self, role, goal, backstory, llm=None, **kwargs):
        self.role, self.goal, self.backstory, self.llm = role, goal, backstory, llm

    def __str__(self):
        return self.role


class Task:
    def __init__(self, description, expected_output, agent=None, context=None, name=None, **kwargs):
        self.description, self.expected_output = description, expected_output
        self.agent, self.context, self.name = agent, context or [], name


class Crew:
    def __init__(self, agents, tasks, task_callback=None, **kwargs):
        assert agents and tasks, "a crew needs agents and tasks"
        self.agents, self.tasks, self.task_callback = agents, tasks, task_callback

    def kickoff(self, inputs=None):
        if not os.environ.get("OPENAI_API_KEY"):
            raise RuntimeError("stub crewai: OPENAI_API_KEY is required")
        outputs = []
        for task in self.tasks:
            description = task.description.format(**(inputs or {}))
            output = SimpleNamespace(
                name=task.name, description=description, agent=task.agent.role, raw="echo: " + description
            )
            outputs.append(output)
            if self.task_callback:
                self.task_callback(output)
        return SimpleNamespace(raw=outputs[-1].raw, tasks_output=outputs)
