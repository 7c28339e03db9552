"""RL corpora: prompts with verifiers stored as data, a sandbox for code, TRL reward functions.

- :mod:`~posttrain.platform.rl.verifiers`: verifier kinds, their specs, their verdicts;
- :mod:`~posttrain.platform.rl.sandbox`: untrusted Python in a limited, network-less process;
- :mod:`~posttrain.platform.rl.build`: ``gold.rl_prompts`` and its rejections;
- :mod:`~posttrain.platform.rl.rewards`: the reward function TRL's ``GRPOTrainer`` takes.
"""
