"""Reinforcement-learning traders on the project's broker: the RL environment, stable-baselines3
baselines (PPO, A2C, DQN), CPPO and FinRL-DeepSeek's LLM infusion, FLAG-Trader."""
