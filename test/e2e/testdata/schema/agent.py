"""Greets by name. Its entrypoints declare an input_schema, so the server
refuses malformed calls before this code ever runs."""


def greet(message, times=1):
    return {"greeting": " ".join([message] * times)}


def greet_stream(message):
    for word in message.split():
        yield word
