"""``python -m corsflow``: the same as the ``corsflow`` command."""

from .cli import command

command()
