"""Training a run: its command line, the model factory, the loop, callbacks, checkpoints,
evaluation and cost; and the RL Baselines3 Zoo route."""
