"""The training engine: configuration, tasks, the training loop (one seam per backend), checkpoints,
evaluation and prediction. Nothing is imported here, so ``import kzoo`` stays light."""
