"""An agent that keeps per-user notes in its persistent folders."""
import os
import time

NOTES = "notes"
CACHE = os.path.join("state", "cache")


def remember(key, value):
    with open(os.path.join(NOTES, key), "w") as f:
        f.write(value)
    with open(os.path.join(CACHE, "last"), "w") as f:
        f.write(key)
    return sorted(os.listdir(NOTES))


def recall(key=None):
    """The notes this user left, and the last key written."""
    notes = {}
    for name in sorted(os.listdir(NOTES)):
        with open(os.path.join(NOTES, name)) as f:
            notes[name] = f.read()
    last = None
    if os.path.exists(os.path.join(CACHE, "last")):
        with open(os.path.join(CACHE, "last")) as f:
            last = f.read()
    if key is not None:
        return notes.get(key)
    return {"notes": notes, "last": last}


def fill(mb=100):
    """Write up to mb MiB into the notes folder; report how far it got."""
    chunk = b"x" * (1 << 20)
    written = 0
    try:
        with open(os.path.join(NOTES, "big"), "wb") as f:
            for _ in range(mb):
                f.write(chunk)
                f.flush()
                written += 1
            os.fsync(f.fileno())
    except OSError as e:
        return {"written_mb": written, "error": e.strerror}
    finally:
        if os.path.exists(os.path.join(NOTES, "big")):
            os.remove(os.path.join(NOTES, "big"))
    return {"written_mb": written, "error": None}


def many_files(n=100000):
    """Create up to n empty files; report how many it could."""
    made = 0
    try:
        for i in range(n):
            open(os.path.join(NOTES, "f%06d" % i), "w").close()
            made += 1
    except OSError as e:
        return {"made": made, "error": e.strerror}
    finally:
        for i in range(made):
            os.remove(os.path.join(NOTES, "f%06d" % i))
    return {"made": made, "error": None}


def append_slowly(key, n=50, delay=0.05):
    """Append a line to a note n times, syncing each: for kill -9 tests."""
    path = os.path.join(NOTES, key)
    for i in range(n):
        with open(path, "a") as f:
            f.write("line %d\n" % i)
            f.flush()
            os.fsync(f.fileno())
        time.sleep(delay)
    return n


def where():
    return {"cwd": os.getcwd(), "notes": os.path.realpath(NOTES), "exists": os.path.isdir(NOTES)}
