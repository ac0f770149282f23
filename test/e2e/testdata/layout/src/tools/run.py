"""An entrypoint in a folder: its sibling imported absolutely (the
entrypoint's folder is on sys.path) and its parent's module relatively."""

import helper

from ..shared import BASE


def run():
    return helper.tag(BASE)
