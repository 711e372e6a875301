"""The observation threat surface: attackers that perturb what agents see within an ε-ball,
and the defences trained against them.

Attacks: `attacks` (none, random, and the FGSM/PGD wrappers), `fgsm`, `pgd`, `atla`, `pa_ad`
(with their shared base in `learned`); training the learned ones: `train_attacker`.
Defences: `adversarial_training` (ATLA / PA-AD alternation), `policy_regularisation` (the hinge
regulariser), `mixture_perturb` (training against a mixture of attackers).
"""
