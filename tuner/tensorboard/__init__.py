"""TensorBoard export: the live HParams view (``export``), the HParams mapping of a
search space (``hparams``) and the event-file format (``event_file``)."""
