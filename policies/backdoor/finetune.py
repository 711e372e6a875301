"""The fine-tuning defence: the delivered team keeps training on clean episodes.

The MARNet paper's "Fine-tune1/2" (two budgets): the defender, who does not know the trigger,
continues the team's Q-learning (`policies.learners.train_defender`) on episodes of the
scenario without triggers, at a small fixed exploration rate, for `steps` steps. A
backdoor that clean experience never activates can survive it: what clean training does not
visit, it does not overwrite.
"""

from __future__ import annotations

from policies.learners.train_defender import DefenderTrainConfig, train_defender


def finetune(kind: str, config: dict, weights: dict, scenario: str, steps: int, lr: float,
             eps: float, seed: int, device="cpu", on_progress=None, should_stop=None):
    """(config, weights, provenance) of the team after `steps` clean training steps."""
    cfg = DefenderTrainConfig(algo=kind, scenario=scenario, steps=steps, seed=seed, lr=lr,
                              eps_start=eps, eps_finish=eps, init=weights, init_config=config,
                              test_every=steps, test_attacks=False, device=device)
    res = train_defender(cfg, on_progress=on_progress, should_stop=should_stop)
    prov = {k: res.provenance[k] for k in ("steps", "final_test_return", "final_test_win",
                                             "wall_time_s")}
    return res.config, res.weights, {**prov, "partial": res.partial}
