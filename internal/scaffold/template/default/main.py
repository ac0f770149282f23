"""An example RunAgent-compatible agent, written by `runagent init`.

runagent.config.json maps each entrypoint tag to a function in this file:

    generate         -> generate()         a plain call: returns one value
    generate_stream  -> generate_stream()  a stream: yields chunks, because
                                           its tag ends in _stream

Callers pass keyword arguments: `runagent run ... --message=hi` calls
generate(message="hi"). Only the Python standard library is used.
"""

import time


def generate(message: str = "hello", repeat: int = 1) -> dict:
    """Reply to a message, repeated `repeat` times (1 to 100)."""
    repeat = max(1, min(int(repeat), 100))
    return {
        "reply": " ".join([f"You said: {message}"] * repeat),
        "length": len(str(message)),
        "repeat": repeat,
    }


def generate_stream(message: str = "hello", words: int = 5):
    """Yield a reply one word at a time: `words` words (0 to 1000), taken
    in turn from the message."""
    vocabulary = str(message).split() or ["..."]
    count = max(0, min(int(words), 1000))
    for i in range(count):
        if i:
            time.sleep(0.2)  # slow enough to watch the chunks arrive
        word = vocabulary[i % len(vocabulary)]
        yield word if i == count - 1 else word + " "
