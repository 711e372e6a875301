"""The backdoor surface: a supply-chain attacker delivers a poisoned team and a trigger.

Seed paper: "MARNet: Backdoor Attacks against Cooperative Multi-Agent Reinforcement
Learning". The attacker controls training: it hands over a team that plays normally until a
trigger appears in the environment, then its poisoned agents play their worst actions.

- `trigger`: the attacker at play (it places its trigger in every episode, arena's
  environment hook) and the team it delivers, read from its record;
- `marnet`, `trojdrl`, `mtl`: the poisoning recipes, as collection hooks
  (`poisoning.Poisoning`) of the project's Q-learner; `train_backdoor` trains one;
- `finetune`, `prune`: defences applied to a delivered team; `cells` plays the game
  (defence, backdoor) with the trigger on and off.
"""

BACKDOOR_ATTACKS = ("marnet", "trojdrl", "mtl", "honest")
RECIPES = ("marnet", "trojdrl", "mtl", "honest")
DEFENCES = ("as_delivered", "finetune", "prune")
