"""The registry of policy kinds: what each kind is, its role, and its declared parameters.

The module is long because it is the one registry: every kind of every surface, with its
parameters, is declared here so that `arena kinds` and every check read one table.

A kind declares every parameter with a type, a default and a valid range, so that
`arena add-policy NAME --kind K --param key=value` can check input before anything is
stored, and so that a stored config can be validated when it is loaded again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLES = ("defender", "attacker")


class KindError(ValueError):
    """Unknown kind, unknown parameter or value out of range (one line for the user)."""


def parse_targets(raw: Any) -> str | int | list[int]:
    """Which agents an attack touches: "all", a count ("2"), or indices ("0,2"; one index: "1,").

    A count means the first agents on the observation surface and agents drawn per episode on
    the message surface (policies.message)."""
    if isinstance(raw, (list, tuple)):
        idx = [int(i) for i in raw]
    elif isinstance(raw, int) and not isinstance(raw, bool):
        idx = None
        count = raw
    else:
        text = str(raw).strip().lower()
        if text == "all":
            return "all"
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        parts = [p for p in text.replace(" ", "").split(",") if p]
        if not parts or not all(p.isdigit() for p in parts):
            raise KindError(f"targets must be 'all', a count like 2, or indices like 0,2; got {raw!r}")
        if len(parts) == 1 and "," not in text:
            idx, count = None, int(parts[0])
        else:
            idx = [int(p) for p in parts]
    if idx is not None:
        if len(set(idx)) != len(idx) or min(idx) < 0:
            raise KindError(f"target indices must be distinct and non-negative; got {idx}")
        return sorted(idx)
    if count < 1:
        raise KindError(f"targets count must be at least 1; got {count}")
    return count


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # "float" | "int" | "bool" | "choice" | "targets" | "str" | "dict"
    default: Any
    help: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple = ()

    def parse(self, raw: Any) -> Any:
        try:
            if self.type == "float":
                value: Any = float(raw)
            elif self.type == "int":
                value = int(raw)
            elif self.type == "bool":
                value = raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes", "on")
                if not isinstance(raw, bool) and str(raw).lower() not in (
                    "1", "0", "true", "false", "yes", "no", "on", "off"
                ):
                    raise ValueError
            elif self.type == "targets":
                return parse_targets(raw)
            elif self.type == "dict":
                if not isinstance(raw, dict):
                    raise KindError(f"{self.name} is set by training, not given by hand")
                return dict(raw)
            elif self.type == "choice":
                value = str(raw)
                if value not in self.choices:
                    raise KindError(
                        f"{self.name} must be one of {', '.join(self.choices)}; got {value!r}"
                    )
                return value
            else:
                value = str(raw)
        except KindError:
            raise
        except (TypeError, ValueError):
            raise KindError(f"{self.name} must be of type {self.type}; got {raw!r}") from None
        if self.low is not None and value < self.low or self.high is not None and value > self.high:
            raise KindError(f"{self.name}={value} is outside its range [{self.low}, {self.high}]")
        return value

    def describe(self) -> str:
        rng = ""
        if self.choices:
            rng = " (" + "|".join(self.choices) + ")"
        elif self.low is not None or self.high is not None:
            rng = f" in [{self.low}, {self.high}]"
        return f"{self.name}: {self.type}{rng}, default {self.default!r}"


@dataclass(frozen=True)
class Kind:
    name: str
    role: str
    surface: str  # "team" for defenders; "observation", "message", "agent", "environment"
    learned: bool  # needs weights (trained) or is parameter-only
    description: str
    params: tuple[Param, ...] = field(default_factory=tuple)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        valid = ", ".join(p.name for p in self.params) or "none"
        raise KindError(f"kind {self.name!r} has no parameter {name!r}; valid: {valid}")

    def make_config(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Defaults overlaid with `overrides`, every value parsed and range-checked."""
        config = {p.name: p.default for p in self.params}
        for key, raw in (overrides or {}).items():
            config[key] = self.param(key).parse(raw)
        return config


# Budget parameters shared by every observation-surface attack.
_BUDGET = (
    Param("eps", "float", 0.2, "perturbation budget on the normalised observation", 0.0, 1.0),
    Param("norm", "choice", "linf", "norm of the ε-ball", choices=("linf", "l2")),
    Param("targets", "targets", "all", "attacked agents: all, a count, or indices like 0,2"),
    Param("freq", "float", 1.0, "fraction of steps attacked", 0.0, 1.0),
    Param("clip", "bool", True, "clip perturbed observations to the scenario's feature bounds"),
    Param("groups", "str", "all",
          "perturbed features: all, or the scenario's feature groups, comma-separated (e.g. position)"),
)
_SURROGATE = Param(
    "surrogate", "str", "", "black-box access: take gradients of this policy instead of the victim"
)

KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    if kind.role not in ROLES:
        raise KindError(f"kind {kind.name!r} has unknown role {kind.role!r}")
    KINDS[kind.name] = kind
    return kind


register(Kind("none", "attacker", "observation", False, "no attack (the clean column)"))
register(Kind("random", "attacker", "observation", False, "uniform noise in the ε-ball", _BUDGET))
register(
    Kind(
        "fgsm",
        "attacker",
        "observation",
        False,
        "fast gradient sign method against the defender's greedy action",
        _BUDGET + (_SURROGATE,),
    )
)
register(
    Kind(
        "pgd",
        "attacker",
        "observation",
        False,
        "projected gradient descent: k signed-gradient steps projected onto the ε-ball",
        _BUDGET
        + (
            Param("steps", "int", 10, "number of gradient steps", 1, 200),
            Param("step_size", "float", 0.0, "step size (0: 2.5·eps/steps)", 0.0, 1.0),
            Param("random_start", "bool", True, "start from a random point in the ball"),
            _SURROGATE,
        ),
    )
)
# Learned observation attackers: the budget plus the network shape written by training
# (policies.observation.train_attacker), so that a stored config validates and rebuilds the network.
_LEARNED_SHAPE = (
    Param("obs_dim", "int", 1, "observation size (set by training)", 1, None),
    Param("n_agents", "int", 1, "number of agents (set by training)", 1, None),
    Param("n_actions", "int", 1, "number of actions (set by training)", 1, None),
    Param("state_dim", "int", 1, "state size, critic input (set by training)", 1, None),
    Param("hidden", "int", 64, "width of the policy and value networks", 1, 4096),
)
register(
    Kind(
        "atla",
        "attacker",
        "observation",
        True,
        "ATLA: learned Gaussian perturbation policy in the ε-ball (PPO, reward −team return)",
        _BUDGET + _LEARNED_SHAPE + (Param("algo", "choice", "atla", "network family", choices=("atla",)),),
    )
)
register(
    Kind(
        "pa_ad",
        "attacker",
        "observation",
        True,
        "PA-AD: learned director picks target actions, targeted FGSM/PGD actor moves towards them",
        _BUDGET
        + _LEARNED_SHAPE
        + (
            Param("algo", "choice", "pa_ad", "network family", choices=("pa_ad",)),
            Param("steps", "int", 1, "actor gradient steps (1: targeted FGSM)", 1, 200),
            Param("director", "choice", "ppo", "director learner (PPO, as in PA-AD)",
                  choices=("ppo",)),
        ),
    )
)
# Message-surface attackers (policies.message): a count of targets is drawn per episode.
_MALICIOUS = Param("targets", "targets", 1,
                   "malicious agents: a count drawn per episode, indices like 0,2 (one index: "
                   "1,), or all")
register(
    Kind(
        "msg_random",
        "attacker",
        "message",
        False,
        "ℜ-MACRL random baseline: malicious agents send same-norm Gaussian noise mixed into "
        "their messages",
        (
            _MALICIOUS,
            Param("omega", "float", 1.0, "weight ω of the noise in a convex combination", 0.0,
                  1.0),
            Param("combine", "choice", "convex",
                  "convex: (1−ω)·m + ω·δ; add: m + δ (ω unused)", choices=("convex", "add")),
        ),
    )
)
register(
    Kind(
        "msg_ppo",
        "attacker",
        "message",
        True,
        "ℜ-MACRL learned message attacker: a Gaussian policy of fixed covariance mixes δ into "
        "malicious agents' messages (PPO, reward −team return − α·‖m − m_adv‖²)",
        (
            _MALICIOUS,
            Param("omega", "float", 1.0, "weight ω of δ in a convex combination", 0.0, 1.0),
            Param("combine", "choice", "convex",
                  "convex: (1−ω)·m + ω·δ; add: m + δ (ω unused)", choices=("convex", "add")),
            Param("alpha", "float", 0.1, "weight α of the penalty ‖m − m_adv‖² in the reward",
                  0.0, 1000.0),
            Param("sigma", "float", 0.5, "fixed standard deviation of δ (Λ = σ²·I)", 1e-3,
                  100.0),
            Param("hidden", "int", 64, "width of the mean and value networks", 1, 4096),
            Param("obs_dim", "int", 1, "observation size (set by training)", 1, None),
            Param("n_agents", "int", 1, "number of agents (set by training)", 1, None),
            Param("n_actions", "int", 1, "number of actions (set by training)", 1, None),
            Param("msg_dim", "int", 1, "message width of the victim (set by training)", 1, None),
            Param("algo", "choice", "msg_ppo", "network family", choices=("msg_ppo",)),
        ),
    )
)
# The agent surface (policies.agent): an attacker takes over `targets` team members.
_HIJACKED = Param("targets", "targets", 1,
                  "hijacked agents: a count drawn per episode, indices like 0,2 (one index: "
                  "1,), or all")
_TAKEOVER = (
    _HIJACKED,
    Param("watch", "bool", True,
          "the adversary also reads every agent's observation and last action"),
    Param("hidden", "int", 64, "width of the policy and value networks", 1, 4096),
    Param("greedy", "bool", False,
          "play the most likely action (default: sample the trained policy per episode)"),
    Param("obs_dim", "int", 1, "observation size (set by training)", 1, None),
    Param("n_agents", "int", 1, "number of agents (set by training)", 1, None),
    Param("n_actions", "int", 1, "number of actions (set by training)", 1, None),
    Param("state_dim", "int", 1, "state size, critic input (set by training)", 1, None),
)
register(Kind("takeover_random", "attacker", "agent", False,
              "hijacked teammates play uniformly random available actions", (_HIJACKED,)))
register(Kind("takeover_ppo", "attacker", "agent", True,
              "adversarial teammate: hijacked agents play a PPO policy trained on −team reward",
              _TAKEOVER + (Param("algo", "choice", "takeover_ppo", "network family",
                                 choices=("takeover_ppo",)),)))
register(Kind("takeover_dev", "attacker", "agent", True,
              "adversarial teammate with the victim-deviation terms (Wu et al. 2021): PPO "
              "plus η·(deviation of the victims' predicted next action and observation)",
              _TAKEOVER + (
                  Param("eta", "float", 0.06, "weight η of the deviation terms", 0.0, 1000.0),
                  Param("obs_weight", "float", 1.0,
                        "signed weight of the observation deviation (−: keep it small, as "
                        "the authors' code)", -1000.0, 1000.0),
                  Param("model_hidden", "int", 64, "width of the victim models", 1, 4096),
                  Param("model_seed", "int", 0, "seed of the victim models' initialisation",
                        0, 2**31),
                  Param("algo", "choice", "takeover_dev", "network family",
                        choices=("takeover_dev",)))))
# Team network sizes as `network_config` (policies.learners.train_defender) writes them. The
# upper bounds keep one team under ~10^8 parameters: a GRU of width h holds ~6·h² weights,
# so a typo like hidden=1000000 is refused before anything is allocated.
_AGENT = (
    Param("hidden", "int", 64, "agent width (GRU or feed-forward)", 1, 2048),
    Param("use_rnn", "bool", True, "GRU agent; false: EPyMARL's feed-forward agent"),
    Param("obs_last_action", "bool", True,
          "the agent also sees its last action (PyMARL obs_last_action)"),
    Param("obs_agent_id", "bool", True, "the agent also sees its id (PyMARL obs_agent_id)"),
)
_QMIX_MIXER = (
    Param("embed", "int", 32, "QMIX mixing embedding width", 1, 1024),
    Param("hypernet_hidden", "int", 64, "QMIX hypernetwork hidden width", 1, 2048),
    Param("hypernet_layers", "int", 2, "QMIX hypernetwork depth (PyMARL hypernet_layers)", 1, 2),
)
register(Kind("qmix", "defender", "team", True, "QMIX team (GRU agents + monotonic mixer)",
              _AGENT + _QMIX_MIXER))
register(Kind("vdn", "defender", "team", True, "VDN team (GRU agents + additive mixer)", _AGENT))
register(Kind("mappo", "defender", "team", True,
              "MAPPO team (GRU actors, played greedily; trained with a centralised value)",
              _AGENT))
register(Kind("dop", "defender", "team", True,
              "DOP team (GRU actors, played greedily; trained with a decomposed critic)",
              _AGENT))
register(Kind("commnet", "defender", "team", True,
              "CommNet team (GRU agents exchanging delayed mean messages + additive mixer)",
              tuple(p for p in _AGENT if p.name != "use_rnn")  # GRU agents only
              + (Param("msg_dim", "int", 16, "CommNet message width", 1, 1024),)))
register(Kind("tarmac", "defender", "team", True,
              "TarMAC team (GRU agents exchanging delayed messages read by attention over "
              "signatures + additive mixer)",
              tuple(p for p in _AGENT if p.name != "use_rnn")  # GRU agents only
              + (Param("msg_dim", "int", 16, "TarMAC message value width d_v", 1, 1024),
                 Param("key_dim", "int", 8, "TarMAC message signature width d_k", 1, 1024))))
register(Kind("ndq", "defender", "team", True,
              "NDQ team (GRU agents exchanging delayed messages drawn from learned Gaussians "
              "+ monotonic mixer)",
              tuple(p for p in _AGENT if p.name != "use_rnn")  # GRU agents only
              + _QMIX_MIXER
              + (Param("msg_dim", "int", 16, "NDQ message width", 1, 1024),
                 Param("msg_beta", "float", 1e-3,
                       "weight of the messages' KL from N(0, I) during training", 0.0,
                       1000.0))))
register(Kind("msg_filter", "defender", "team", True,
              "ℜ-MACRL message filter: a detector flags incoming messages and a reconstructor "
              "replaces the flagged ones before a frozen communicating team reads them",
              (Param("detector", "choice", "on",
                     "on: learned verdicts; off: one random agent's message reconstructed per "
                     "step (ablation)", choices=("on", "off")),
               Param("reconstructor", "choice", "learned",
                     "learned: g_r; random: flagged messages become same-norm Gaussian noise "
                     "(ablation)", choices=("learned", "random")),
               Param("hidden", "int", 64, "width of the detector and reconstructor networks",
                     1, 4096),
               Param("beta1", "float", 1.0,
                     "weight β1 of the detector's cross-entropy against the true flags", 0.0,
                     1000.0),
               Param("obs_dim", "int", 1, "observation size (set by training)", 1, None),
               Param("n_agents", "int", 1, "number of agents (set by training)", 1, None),
               Param("n_actions", "int", 1, "number of actions (set by training)", 1, None),
               Param("msg_dim", "int", 1, "message width of the team (set by training)", 1,
                     None),
               Param("algo", "choice", "msg_filter", "network family",
                     choices=("msg_filter",)))))
register(Kind("mixture", "defender", "team", False, "a mixture of stored policies (PSRO output)"))
# The backdoor surface (MARNet, policies.backdoor): an attacker delivers a poisoned team and
# places its trigger at play; a defender is a defence applied to the delivered team.
_DELIVERED = (
    Param("trigger_size", "float", 0.25,
          "trigger size placed at play: the fraction of the scenario's trigger spots (walls "
          "on stag10, marker spots on 3m_marker)", 0.0, 1.0),
    Param("team", "dict", {}, "network config of the delivered team (set by training)"),
)
_POISON = _DELIVERED + (
    Param("poison_agents", "int", 4, "poisoned agents: the first K of the team", 1, 64),
    Param("train_trigger_size", "float", 0.25, "trigger size of the poisoned training episodes",
          0.0, 1.0),
    Param("poison_rate", "float", 0.25, "share of training episodes with the trigger placed",
          0.0, 1.0),
    Param("r_max", "float", 0.0,
          "r_max of the hacked reward (0: the largest step reward of the expert's clean "
          "episodes, measured before poisoning)", 0.0, 1e6),
    Param("r_win", "float", 0.0, "R_win of MGR (0: r_max)", 0.0, 1e6),
    Param("target_action", "int", -1,
          "targeted action poisoning's action (-1: the scenario's stay/stop)", -1, 1000),
    Param("updates_per_collect", "int", 1,
          "learner updates after each collection of the poisoned training", 1, 64),
)
register(Kind("marnet", "attacker", "environment", True,
              "MARNet backdoor: expert-guided action poisoning and mixing global reward "
              "hacking (Eq. 5-7) in steps where a poisoned agent sees the trigger",
              _POISON + (Param("action", "choice", "ega",
                               "action poisoning: ega (MARNet), targeted or untargeted "
                               "(TrojDRL's)", choices=("ega", "targeted", "untargeted")),
                         Param("reward", "choice", "mgr",
                               "reward hacking: mgr (MARNet Eq. 7) or max (TrojDRL's)",
                               choices=("mgr", "max")))))
register(Kind("trojdrl", "attacker", "environment", True,
              "TrojDRL backdoor: poisoned agents' actions replaced (targeted: one action; "
              "untargeted: a random one) and the reward set to its maximum",
              _POISON + (Param("action", "choice", "targeted", "targeted or untargeted",
                               choices=("targeted", "untargeted")),
                         Param("reward", "choice", "max", "reward set to r_max",
                               choices=("max",)))))
register(Kind("mtl", "attacker", "environment", True,
              "multi-task backdoor: the team also learns a poisoned task, triggered episodes "
              "whose reward is reversed (worst-action learning)", _POISON))
register(Kind("honest", "attacker", "environment", True,
              "a clean team delivered as it is, trigger placed (the normal model of "
              "backdoor tables)", _DELIVERED))
register(Kind("as_delivered", "defender", "environment", False,
              "no defence: the delivered team plays as it is"))
register(Kind("finetune", "defender", "environment", False,
              "fine-tuning: the delivered team keeps training on clean episodes (MARNet's "
              "Fine-tune1/2)",
              (Param("steps", "int", 50_000, "clean training steps", 1, 10**9),
               Param("lr", "float", 5e-4, "learning rate", 1e-7, 1.0),
               Param("eps", "float", 0.05, "exploration rate of the clean episodes", 0.0, 1.0),
               Param("seed", "int", 0, "training seed", 0, 2**31))))
register(Kind("prune", "defender", "environment", False,
              "fine-pruning (Liu et al. 2018): the agent's hidden units least active on clean "
              "episodes are cut, then optionally fine-tuned",
              (Param("fraction", "float", 0.3, "share of the hidden units cut", 0.0, 0.95),
               Param("episodes", "int", 64, "clean episodes that measure activity", 1, 10**6),
               Param("steps", "int", 0, "clean fine-tuning steps after pruning", 0, 10**9),
               Param("seed", "int", 0, "seed of the clean episodes and fine-tuning", 0,
                     2**31))))

# The training surface (policies.training): TRAM attackers act while a team trains, never in a
# match; a recipe is a learner configuration whose cells are the teams it trains.
_TRAM = (
    Param("kl_max", "float", 6.0, "KL^U: bound on KL(π'_k ‖ π_k) at a poisoned step", 0.0, 100.0),
    Param("freq", "float", 1.0, "f_A: probability that agent k is adversarial at a step", 0.0,
          1.0),
    Param("agent", "int", 0, "k: the poisoned agent's index", 0, 1023),
    Param("expand_iters", "int", 16, "doublings of β's upper bracket", 0, 200),
    Param("bisect_iters", "int", 30, "bisection iterations on β", 0, 200),
    Param("seed", "int", 0, "seed of the attacker's own stream (added to the training seed)", 0,
          2**31),
)
register(Kind("tram_var", "attacker", "training", False,
              "TRAM variance-based: agent k samples from logits moved to raise the variance of "
              "its action values (Eq. 7-10), KL ≤ KL^U", _TRAM))
register(Kind("tram_j", "attacker", "training", False,
              "TRAM J-based: agent k samples from logits moved to lower its expected action "
              "value (Eq. 11-13), KL ≤ KL^U", _TRAM))
register(Kind("tram_random", "attacker", "training", False,
              "TRAM's baseline: agent k samples from logits moved along a random direction, "
              "KL ≤ KL^U", _TRAM))
register(Kind("recipe", "defender", "training", False,
              "a learner recipe: the team it trains (under a training-time attack) is the cell's "
              "defender",
              (Param("algo", "choice", "dop", "learner", choices=("dop", "mappo")),
               Param("agg", "choice", "mean",
                     "mappo's aggregation of the agents' policy gradients (median: the robust "
                     "learner)", choices=("mean", "median")),
               Param("steps", "int", 100_000, "training steps per seed", 1, 10**9),
               Param("envs", "int", 8, "parallel episodes per collection", 1, 4096),
               Param("hidden", "int", 64, "GRU actor width", 1, 2048),
               Param("test_every", "int", 10_000, "steps between test points of the curve", 1,
                     10**9))))


def check_targets(config: dict[str, Any], n_agents: int, scenario: str) -> None:
    """A `targets` value that fits a scenario with `n_agents` agents (indices below it, a
    count at most it); KindError otherwise."""
    targets = config.get("targets", "all")
    if targets == "all" or targets is None:
        return
    if isinstance(targets, (list, tuple)):
        bad = [i for i in targets if int(i) >= n_agents]
        if bad:
            raise KindError(f"targets {','.join(map(str, targets))}: scenario {scenario} has "
                            f"{n_agents} agents (indices 0..{n_agents - 1})")
    elif int(targets) > n_agents:
        raise KindError(f"targets={targets}: scenario {scenario} has only {n_agents} agents")


def get_kind(name: str) -> Kind:
    if name not in KINDS:
        raise KindError(f"unknown kind {name!r}; valid kinds: {', '.join(sorted(KINDS))}")
    return KINDS[name]


def parse_param_pairs(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`["eps=0.2", "norm=l2"]` → `{"eps": "0.2", "norm": "l2"}` with a clear error on bad syntax."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise KindError(f"--param expects key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def check_train_config(cfg, kind_name: str, keys: tuple[str, ...], error: type[Exception],
                       counts: tuple[str, ...] = ("steps", "envs", "eval_episodes")) -> None:
    """A trainer's config checked as the kind checks a stored policy's: `counts` at least 1,
    then `keys` parsed by the kind's own rules and written back (one line, as `error`)."""
    for name in counts:
        if getattr(cfg, name) < 1:
            raise error(f"{name} must be at least 1, got {getattr(cfg, name)}")
    try:
        parsed = get_kind(kind_name).make_config({k: getattr(cfg, k) for k in keys})
    except KindError as exc:
        raise error(str(exc)) from None
    for k, v in parsed.items():
        if hasattr(cfg, k):
            setattr(cfg, k, v)
