"""Offline evaluation: leakage-free splits, pure ranking metrics, one evaluation path for every model."""
