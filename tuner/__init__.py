"""tuner: Tune-style hyperparameter tuning on Ray core."""
