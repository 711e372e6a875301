"""The feasible set of the observation attacks, and the PA-AD actor's objective.

Every observation attacker (random, FGSM, PGD, ATLA, PA-AD) perturbs within the ε-ball, only
on the features of its `groups`, and, with `clip` (the default), inside the scenario's
per-feature bounds. The PA-AD actor is Eq. 7 of Guo et al. (2023), checked on a linear Q whose
gradients can be written down by hand.
"""

from __future__ import annotations

import pytest
import torch

from arena.rollout import AttackContext, Streams
from arena.scenarios import make
from policies.errors import PolicyError
from policies.kinds import KindError, get_kind
from policies.lineup import build_lineup
from policies.observation.atla import ATLAAttacker, atla_config
from policies.observation.attacks import build_attack
from policies.observation.pa_ad import PAADAttacker, pa_ad_config, targeted_step
from store import League
from tests.helpers import make_league

KINDS = ("random", "fgsm", "pgd", "atla", "pa_ad")
R = 32


def observations(scenario: str, steps: int = 4):
    """Real observations of `scenario` a few random legal steps in: (spec, obs, avail, state)."""
    env = make(scenario, R)
    ts = env.reset(seed=0)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        A = ts.avail.shape[-1]
        probs = ts.avail.float().reshape(-1, A)
        actions = torch.multinomial(probs, 1, generator=g).view(R, -1)
        ts = env.step(actions)
    return env.spec, ts.obs, ts.avail, ts.state


def victim(spec, seed: int = 0):
    """A fixed two-layer Q on observations: q_fn(obs [R, n, o]) → [R, n, A]."""
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(spec.obs_dim, 32, generator=g)
    w2 = torch.randn(32, spec.n_actions, generator=g)
    return lambda o: torch.tanh(o @ w1) @ w2


def attacker(kind: str, spec, eps: float = 0.5, **params):
    """An attacker of `kind` within `spec`'s groups and bounds; learned ones saturated, so
    their perturbation reaches the edge of the ball."""
    config = {"eps": eps, "norm": "linf", "targets": "all", **params}
    if kind in ("atla", "pa_ad"):
        make_config = atla_config if kind == "atla" else pa_ad_config
        full = {**make_config(spec, eps, config["norm"], config["targets"], hidden=16), **params}
        torch.manual_seed(0)
        att = (ATLAAttacker if kind == "atla" else PAADAttacker)(full, spec)
        with torch.no_grad():
            att.policy.out.weight.mul_(1000.0)
        return att.eval()
    att = build_attack(kind, get_kind(kind).make_config(config), spec.n_agents, spec)
    att.reset(R, "cpu")
    return att


def perturb(att, q_fn, obs, avail, state):
    ctx = AttackContext(q_fn=q_fn, avail=avail, state=state, t=0,
                        rand=Streams(torch.arange(R), 0), rows=torch.arange(R))
    return att.perturb(obs, ctx)


# -- 1. valid perturbations: the scenario's bounds ---------------------------------------------------
@pytest.mark.parametrize("scenario", ["3m", "pp7"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_attacker_stays_within_the_feature_bounds_by_default(scenario, kind):
    spec, obs, avail, state = observations(scenario)
    low, high = spec.bounds()
    assert bool(((obs >= low) & (obs <= high)).all())  # the clean observations do
    q_fn = victim(spec)
    seen = perturb(attacker(kind, spec), q_fn, obs, avail, state)
    assert bool(((seen >= low) & (seen <= high)).all()), kind
    assert float((seen - obs).abs().max()) <= 0.5 + 1e-6  # still in the ε-ball
    assert float((seen - obs).abs().max()) > 0.1  # and it does perturb

    loose = perturb(attacker(kind, spec, clip=False), q_fn, obs, avail, state)
    assert not bool(((loose >= low) & (loose <= high)).all()), kind  # clip=false leaves them
    assert float((loose - obs).abs().max()) <= 0.5 + 1e-6


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_clips_every_iterate_not_only_the_last(norm):
    """Each PGD gradient is taken at a valid observation. The victim's Q(a0) − Q(a1) is the sum
    of the features, so every step pushes all of them one way, out of pp7's [0, 1] box."""
    spec, obs, avail, state = observations("pp7")
    low, high = spec.bounds()

    def iterates(clip):
        seen_at = []

        def q_fn(o):
            seen_at.append(o.detach().clone())
            s = o.sum(-1, keepdim=True)
            return torch.cat([s, -s, torch.zeros(*o.shape[:2], spec.n_actions - 2)], -1)

        att = attacker("pgd", spec, eps=0.3, norm=norm, steps=4, clip=clip)
        perturb(att, q_fn, obs, avail, state)
        return seen_at[1:]  # the first call finds the clean greedy action

    def inside(x):
        return bool(((x >= low - 1e-6) & (x <= high + 1e-6)).all())

    assert all(inside(x) for x in iterates(True))
    assert not all(inside(x) for x in iterates(False))


def test_a_stored_attacker_without_clip_clips_and_clip_false_does_not(tmp_path):
    path = make_league(tmp_path / "l.h5", "3m", attackers=(("fgsm", ["eps=0.2"]),
                                                           ("pgd", ["eps=0.2", "clip=false"])))
    with League(path) as lg:
        lineup = build_lineup(lg, "3m", ["qmix0@v1"], ["fgsm@v1", "pgd@v1"])
    clipped, loose = lineup.attacker_objs
    assert clipped.low is not None and loose.low is None


# -- 2. feature groups -----------------------------------------------------------------------------
@pytest.mark.parametrize("scenario", ["3m", "pp7"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_groups_perturb_only_their_features(scenario, kind, norm):
    spec, obs, avail, state = observations(scenario)
    group = spec.group_mask("position")  # bool [o]
    seen = perturb(attacker(kind, spec, eps=0.3, norm=norm, groups="position"), victim(spec),
                   obs, avail, state)
    delta = seen - obs
    assert bool((delta[..., ~group] == 0).all()), kind
    assert float(delta[..., group].abs().max()) > 0.05, kind
    size = delta.abs().amax(-1) if norm == "linf" else delta.norm(dim=-1)
    assert float(size.max()) <= 0.3 + 1e-5


@pytest.mark.parametrize("kind", KINDS)
def test_an_unknown_group_is_one_line_naming_the_scenarios_groups(kind):
    spec, *_ = observations("3m", steps=0)
    with pytest.raises(PolicyError) as err:
        attacker(kind, spec, groups="position,colour")
    message = str(err.value)
    assert "\n" not in message and "colour" in message and "3m" in message
    assert all(g in message for g in spec.obs_groups)


def test_the_lineup_names_the_attacker_with_a_bad_group(tmp_path):
    path = make_league(tmp_path / "l.h5", "3m", attackers=(("fgsm", ["groups=colour"]),))
    with League(path) as lg, pytest.raises(PolicyError, match=r"^fgsm@v1: .*colour.*position"):
        build_lineup(lg, "3m", ["qmix0@v1"], ["fgsm@v1"])


def test_kinds_declare_clip_groups_and_director():
    for kind in KINDS:
        config = get_kind(kind).make_config({})
        assert config["clip"] is True and config["groups"] == "all"
        assert get_kind(kind).make_config({"clip": "false"})["clip"] is False
    assert get_kind("pa_ad").make_config({})["director"] == "ppo"
    with pytest.raises(KindError, match="director"):
        get_kind("pa_ad").make_config({"director": "qmix"})
    spec, *_ = observations("3m", steps=0)
    with pytest.raises(PolicyError, match="director"):
        PAADAttacker({**pa_ad_config(spec, 0.2, "linf", "all"), "director": "qmix"})


# -- 3. the PA-AD actor: Eq. 7 of Guo et al. (2023) -------------------------------------------------
# Q(o) = W o with three actions on three features:
#   W = [[0, 0, 1],      a0
#        [1, 0, 0],      a1
#        [0, 2, 0]]      a2
# At o = (1, 0.25, 0.5): Q = (0.5, 1, 0.5), so the clean greedy action is u = a1. For the
# target â = a0, CE(softmax q, a) = logsumexp(q) − q_a gives
#   ∇_o [−CE(â) + CE(u)] = W[â] − W[u] = (−1, 0, 1)            → sign (−1, 0, +1),
# while the targeted term alone would give
#   −∇_o CE(â) = W[â] − pᵀW,  p = softmax(0.5, 1, 0.5) = (0.2741, 0.4519, 0.2741),
#              = (0, 0, 1) − (0.4519, 0.5481, 0.2741) = (−0.452, −0.548, 0.726) → (−1, −1, +1):
# it also pushes away from a2, which Eq. 7 leaves alone.
W = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
O = torch.tensor([1.0, 0.25, 0.5])


def linear_q(o):
    return o @ W.T


@pytest.mark.parametrize("steps", [1, 3])
def test_eq7_step_is_the_sign_of_the_gradient_of_both_cross_entropies(steps):
    obs = O.view(1, 1, 3)
    seen = targeted_step(linear_q, obs, torch.tensor([[0]]), torch.tensor([0]), 0.1, "linf", steps)
    torch.testing.assert_close(seen - obs, 0.1 * torch.tensor([[[-1.0, 0.0, 1.0]]]))
    # the hand-computed direction is the autograd one
    x = obs.clone().requires_grad_(True)
    q = linear_q(x).view(1, 3)
    ce = torch.nn.functional.cross_entropy
    gain = -ce(q, torch.tensor([0])) + ce(q, torch.tensor([1]))
    (grad,) = torch.autograd.grad(gain, x)
    assert torch.equal(grad.sign(), torch.tensor([[[-1.0, 0.0, 1.0]]]))
    # and differs from the targeted term alone
    x = obs.clone().requires_grad_(True)
    (grad_t,) = torch.autograd.grad(-ce(linear_q(x).view(1, 3), torch.tensor([0])), x)
    assert torch.equal(grad_t.sign(), torch.tensor([[[-1.0, -1.0, 1.0]]]))


def test_eq7_l2_step_and_only_the_attacked_agents():
    obs = O.expand(4, 2, 3).clone()  # [R, n, o]
    seen = targeted_step(linear_q, obs, torch.zeros(4, 1, dtype=torch.long), torch.tensor([1]),
                         0.1, "l2")
    want = 0.1 * torch.tensor([-1.0, 0.0, 1.0]) / 2 ** 0.5
    torch.testing.assert_close(seen[:, 1] - obs[:, 1], want.expand(4, 3))
    assert torch.equal(seen[:, 0], obs[:, 0])  # agent 0 is not attacked


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("steps", [1, 5])
def test_eq7_target_equal_to_the_greedy_action_leaves_the_observation(norm, steps):
    """â = u: the two terms cancel and the director's 'keep' is realised by δ = 0, row by row."""
    obs = O.expand(2, 1, 3).clone()
    target = torch.tensor([[1], [0]])  # row 0: â = u = a1; row 1: â = a0
    seen = targeted_step(linear_q, obs, target, torch.tensor([0]), 0.1, norm, steps)
    assert torch.equal(seen[0], obs[0])
    assert float((seen[1] - obs[1]).abs().max()) > 0.05


def test_pa_ad_raises_the_target_over_the_clean_greedy_action():
    """On a real scenario the actor widens Q(â) − Q(u) (the identity behind Eq. 7)."""
    spec, obs, avail, state = observations("3m")
    q_fn = victim(spec, seed=3)
    att = attacker("pa_ad", spec, eps=0.2)
    seen, sample = att.act(obs, q_fn, avail, state)
    with torch.no_grad():
        q0 = q_fn(obs).masked_fill(~avail, -1e9)
        u = q0.argmax(-1)
        target = sample["action"]
        moved = target != u
        assert bool(moved.any())

        def gap(q):
            return (q.gather(-1, target.unsqueeze(-1)) - q.gather(-1, u.unsqueeze(-1))).squeeze(-1)

        assert bool((gap(q_fn(seen))[moved] > gap(q0)[moved]).float().mean() > 0.9)
        assert torch.equal(seen[~moved], obs[~moved])
