"""``genre tune``: Optuna search per model on the validation split; best parameters stored for ``genre train``."""
