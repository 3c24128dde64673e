"""Importing this module fails: the CLI must say so, naming the trainable."""

raise RuntimeError("broken on purpose")
