"""The message threat surface: attackers that alter what malicious agents of a communicating
team send, while those agents keep their own action and message policies.

A message attacker meets `arena.rollout.MessageAttacker`: once per episode it names the
malicious agents (`malicious`), and at every step after the first it returns the in-transit
messages with the malicious agents' rows altered (`message`); the rollout keeps the other
agents' messages as they were sent, whatever the attacker returns. The cost of a step is the
largest per-agent L2 norm of the change.

`targets` says which agents are malicious: "all", explicit indices ("0,2"; a single index is
written with a trailing comma, "1,"), or a count ("2"), which on this surface means that many
agents drawn uniformly per episode from the episode's own random stream (Byzantine agents, as
in Xue et al. 2022), not the first ones as on the observation surface.

Attacks: `msg_random` (same-norm Gaussian noise, ℜ-MACRL's random baseline) and `msg_ppo`
(ℜ-MACRL's learned Gaussian message policy, trained with PPO by `train_msg_attacker`).
Defence: `msg_filter` (ℜ-MACRL's detector and reconstructor in front of a frozen communicating
team, trained by `train_msg_filter`), a defender that the stacked team plays like any other.
"""
