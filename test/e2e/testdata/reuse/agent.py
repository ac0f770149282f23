"""Counts calls in a global and keeps notes in /tmp: both survive between
calls only while the sandbox is kept for the same user_id."""

import os

NOTES = "/tmp/notes.txt"
count = 0


def visit(note=""):
    global count
    count += 1
    print("visit %d" % count, flush=True)
    if note:
        with open(NOTES, "a") as f:
            f.write(note + "\n")
    notes = []
    if os.path.exists(NOTES):
        with open(NOTES) as f:
            notes = f.read().split()
    return {"count": count, "notes": notes}
