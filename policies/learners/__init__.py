"""The learners and their loops: the QMIX/VDN Q-learner (`q_learner`) and its training loop
(`train_defender`), batched PPO (`ppo`), episode collection through the vectorised scenarios
(`collect`) and the episode replay buffer (`episode_buffer`)."""
