"""Training: the phase loop, checkpoints, EMA, stats and the health monitor."""
