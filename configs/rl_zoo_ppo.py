"""RL Baselines3 Zoo hyperparameters with the zoo feature extractor (the rl-zoo extra), e.g.

    python -m rl_zoo3.train --algo ppo --env DemonAttackNoFrameskip-v4 --conf-file configs/rl_zoo_ppo.py

from the repository root (the zoo is agents/).  PPO's Atari hyperparameters of configs/algos.yaml;
choose the zoo and the ZooNatureCNN options here.
"""

from zoo_rl.rl.training.rl_baselines3_zoo import rl_zoo_hyperparams

hyperparams = rl_zoo_hyperparams("ppo", zoo=["agents"], lite=True)
