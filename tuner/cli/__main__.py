"""``python -m tuner.cli``: the same as the ``tuner`` command."""

from tuner.cli.main import main

main(prog_name="tuner")
