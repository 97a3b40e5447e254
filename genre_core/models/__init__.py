"""Models: the Recommender contract (``base``), a registry by config name (``registry``), the baselines
(popularity, itemknn, bpr, content), the hybrid multi-task model, and the training pipeline (``pipeline``)."""
