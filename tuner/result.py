"""Names of the keys the tuner adds to every result (Ray Tune's ``ray.tune.result`` constants).

``SHOULD_CHECKPOINT``: a class trainable's ``step()`` returning it true is checkpointed
after that step. A Ray Tune-style callback setting it in ``on_trial_result`` gets the same
(the trainable waits for the driver at every result while such a callback is present);
a function trainable checkpoints only what it reports, as in Ray Tune.
"""

DONE = "done"
TRAINING_ITERATION = "training_iteration"
TIME_THIS_ITER_S = "time_this_iter_s"
TIME_TOTAL_S = "time_total_s"
TIMESTAMP = "timestamp"
TRIAL_ID = "trial_id"
SHOULD_CHECKPOINT = "should_checkpoint"
