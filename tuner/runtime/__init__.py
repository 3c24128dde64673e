"""What runs inside a worker process: the worker actor, the trial's session, the
two trainable forms, ``tune.report`` and the in-worker stop criteria. Imported by
every worker, so it stays light: no driver machinery, no Ray Tune."""
