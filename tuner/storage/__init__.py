"""The experiment in storage: its on-disk layout, the journal (the source of truth),
checkpoints, and the JSON the metadata is written in. One owner per format."""
