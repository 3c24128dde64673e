"""Names of the keys the tuner adds to every result (Ray Tune's ``ray.tune.result`` constants).

``SHOULD_CHECKPOINT``: a class trainable's ``step()`` returning it true is checkpointed
after that step. A callback setting it on the driver has no effect: the trainable
has moved on by then (use ``checkpoint_freq`` or return it from ``step()``).
"""

DONE = "done"
TRAINING_ITERATION = "training_iteration"
TIME_THIS_ITER_S = "time_this_iter_s"
TIME_TOTAL_S = "time_total_s"
TIMESTAMP = "timestamp"
TRIAL_ID = "trial_id"
SHOULD_CHECKPOINT = "should_checkpoint"
