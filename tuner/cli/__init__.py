"""The ``tuner`` command: sweep files, launching, listing and showing experiments."""
