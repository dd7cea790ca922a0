"""``python -m ghaf``: the same as the ``ghaf`` command."""

from ghaf.cli.main import run

run()
