"""As RunAgent's default template: a relative import of a sibling, with
no __init__.py; and memory kept in SQLite beside the code."""

import os
import sqlite3

from .email_agent import MockClient


def respond(prompt=""):
    db = sqlite3.connect("memory.sqlite")
    db.execute("create table if not exists turns (prompt text)")
    db.execute("insert into turns values (?)", (prompt,))
    db.commit()
    turns = db.execute("select count(*) from turns").fetchone()[0]
    db.close()
    return {"reply": MockClient().reply(prompt), "turns": turns, "files": sorted(os.listdir("."))}
