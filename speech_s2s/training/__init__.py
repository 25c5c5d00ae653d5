"""The training loop, checkpoints with exact resume, distributed setup and plots."""
