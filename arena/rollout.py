"""Greedy evaluation of many (defender, attacker) pairs in one vectorised batch.

Row b of the batch is one episode played by defender member `team_of[b]` under attacker
`attacker_of[b]`. Per step (the observation and message surfaces of DESIGN.md's sketch):

    seen  = attacker_k.perturb(obs[rows_k])   for each observation attacker k, on its rows
                                              (gradient attacks of the team share each
                                              forward and backward pass: arena.gradients)
    h     = with_messages(h, attacker_j.message(messages(h)))   for each message attacker j
    q, h  = team.q_values(seen, h, last)      one stacked call for every row
    a     = greedy(q, avail)
    ts    = env.step(a)

An attacker of the agent surface (a hijacked teammate) acts after the team chose:

    a     = where(hijacked, attacker_j.act(ctx), greedy(q, avail))

its hijacked agents (drawn once per episode) play its actions, which must be available; the
others play the team's own, and never learn who is hijacked. Its cost is the number of
hijacked agents.

An attacker of the environment surface (a backdoor's trigger) acts once, before the reset:
`trigger_size` of its rows' episodes is placed by the scenario (`VecEnv.set_triggers`); its
cost is that size.

The message hook acts before `q_values` because a communicating team reads, at step t, the
messages its agents sent at t − 1, which its recurrent state carries: altering them there is
altering what was sent. It acts from the second step on: before it nothing has been sent.

Arena defines the small protocols a player meets and never imports a concrete policy.
Randomness of players (random noise, PGD starts, attack frequency, mixture draws) comes
from per-episode streams (`arena.core.uniform_from`), so a row's episode is the same whether
it is played alone or inside a batch of thousands.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Protocol

import torch

from arena.core import VecEnv, mix64, uniform_from
from arena.gradients import drive_together
from arena.scenarios import make

QFn = Callable[[torch.Tensor], torch.Tensor]  # obs [R, n, o] -> Q [R, n, A]


class Team(Protocol):
    """Stacked defenders: member m's parameters act on the rows whose member index is m."""

    n_members: int

    def initial_state(self, rows: int, device) -> torch.Tensor: ...

    def q_values(
        self, obs: torch.Tensor, hidden: torch.Tensor, last_action: torch.Tensor,
        member: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]: ...

    # Optional, for the message surface (a team without them does not communicate):
    #   message_width(member [R]) -> [R] long: width of the messages each row's member sends,
    #       0 for one that sends none;
    #   messages(hidden [R, n, H], member [R]) -> [R, n, d]: the messages in transit, rows of
    #       one width d;
    #   with_messages(hidden, msgs [R, n, d], member) -> hidden with those messages replaced.


@dataclass
class AttackContext:
    """What an observation attacker may use for its rows (R of them)."""

    q_fn: QFn  # the victim's (or a surrogate's) Q on these rows, differentiable in obs
    avail: torch.Tensor  # [R, n, A]
    state: torch.Tensor  # [R, state_dim]
    t: int  # step index within the episode batch
    rand: Callable[..., torch.Tensor]  # rand(*shape) -> [R, *shape], per-episode streams
    rows: torch.Tensor  # [R] indices into the batch (for stateful attackers)


class ObservationAttacker(Protocol):
    def reset(self, rows: int, device) -> None: ...

    def perturb(self, obs: torch.Tensor, ctx: AttackContext) -> torch.Tensor: ...


@dataclass
class MessageContext:
    """What a message attacker may use for its rows (R of them)."""

    malicious: torch.Tensor  # [R, n] bool: the agents whose messages may change
    avail: torch.Tensor  # [R, n, A]
    state: torch.Tensor  # [R, state_dim]
    t: int
    rand: Callable[..., torch.Tensor]  # rand(*shape) -> [R, *shape], per-episode streams
    rows: torch.Tensor  # [R] indices into the batch
    # [R, n, o] the agents' clean observations of this step: a learned attacker conditions
    # each malicious agent's message on what that agent sees
    obs: torch.Tensor | None = None


class EnvironmentAttacker(Protocol):
    """An attacker with `surface = "environment"`: it places a trigger of size
    `trigger_size` (a fraction in [0, 1], the scenario's unit) in every episode it plays."""

    surface: str
    trigger_size: float

    def reset(self, rows: int, device) -> None: ...


@dataclass
class AgentContext:
    """What an agent attacker may use for its rows (R of them): its own agents' observations
    and those of the victims it may watch, and the actions every agent took last step."""

    hijacked: torch.Tensor  # [R, n] bool: the agents whose actions it chooses
    obs: torch.Tensor  # [R, n, o]
    avail: torch.Tensor  # [R, n, A]
    state: torch.Tensor  # [R, state_dim]
    last_action: torch.Tensor  # [R, n, A] one-hot of the actions taken at t − 1 (0 at t = 0)
    t: int
    rand: Callable[..., torch.Tensor]  # rand(*shape) -> [R, *shape], per-episode streams
    rows: torch.Tensor  # [R] indices into the batch


class AgentAttacker(Protocol):
    """An attacker with `surface = "agent"`: it takes over some team members' actions."""

    surface: str

    def reset(self, rows: int, device) -> None: ...

    def hijacked(self, n_agents: int, rand: Callable[..., torch.Tensor]) -> torch.Tensor:
        """[R, n] bool, drawn once per episode from its stream."""

    def act(self, ctx: AgentContext) -> torch.Tensor:
        """[R, n] long: actions of (at least) the hijacked agents, available ones."""


class MessageAttacker(Protocol):
    """An attacker with `surface = "message"` (attackers without `surface` are observation
    attackers)."""

    surface: str

    def reset(self, rows: int, device) -> None: ...

    def malicious(self, n_agents: int, rand: Callable[..., torch.Tensor]) -> torch.Tensor:
        """[R, n] bool, drawn once per episode from its stream."""

    def message(self, msgs: torch.Tensor, ctx: MessageContext) -> torch.Tensor: ...


@dataclass
class EpisodeStats:
    returns: torch.Tensor  # [B]
    wins: torch.Tensor  # [B] bool
    lengths: torch.Tensor  # [B] long
    # [B] mean over attacked steps of the largest per-agent perturbation norm (the attack's
    # norm of δ on observations, L2 of m' − m on messages)
    cost: torch.Tensor


def greedy(q: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    return q.masked_fill(~avail, float("-inf")).argmax(-1)


def episode_seeds(seed: int, first: int, count: int, device=None) -> torch.Tensor:
    """Seeds of episodes first..first+count-1 of a cell seeded with `seed`: shared by every
    cell (common random numbers), so defenders and attackers face the same starting states."""
    idx = torch.arange(first, first + count, dtype=torch.long, device=device)
    return mix64(mix64(torch.full_like(idx, int(seed))) + idx * 0x2545F4914F6CDD1D)


_SALT_ATTACK, _SALT_FREQ, _SALT_MALICIOUS, _SALT_HIJACK = 0x51ED27, 0x7A11CE, 0x3A11CE5, 0x41AC7


def stream_salt(name: str) -> int:
    """A salt for a player's random streams from what a match record stores (its ref), so an
    episode draws the same numbers alone, inside any batch, and when replayed from its record.
    sha256 rather than hash(): Python salts str hashes per process."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little", signed=True)


def play(
    scenario: str,
    team: Team,
    team_of: torch.Tensor,
    attackers: list,
    attacker_of: torch.Tensor,
    seeds: torch.Tensor,
    device="cpu",
    freq: list[float] | None = None,
    surrogates: dict[int, tuple[Team, torch.Tensor]] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    env: VecEnv | None = None,
    attack_salts: list[int] | None = None,
    drop_finished: bool = True,
) -> EpisodeStats:
    """Play B = len(seeds) greedy episodes; row b: member team_of[b] vs attackers[attacker_of[b]].

    `freq[k]` is the fraction of steps attacker k acts (drawn per episode and step).
    `surrogates[k] = (team, member index [B])` gives attacker k black-box access: its gradients
    come from that team instead of the victim. `env` is a ready batch of B episodes of
    `scenario` (built from the registry when None; one given keeps all its rows to the end).
    `attack_salts[k]` salts attacker k's random streams (`stream_salt` of its ref); without it
    the salt is k, which holds only while the attackers list is the same in every batch.
    `drop_finished=False` keeps finished episodes in the batch to the end (the statistics are
    the same; the reference the drop is tested against).
    """
    device = torch.device(device)
    B = len(seeds)
    seeds = seeds.to(device)
    team_of, attacker_of = team_of.to(device), attacker_of.to(device)
    own_env = env is None
    if own_env:
        env = make(scenario, B, device=device)
    elif env.B != B:
        raise ValueError(f"env steps {env.B} episodes but {B} seeds were given")
    n, A = env.spec.n_agents, env.spec.n_actions
    ret = torch.zeros(B, device=device)
    won = torch.zeros(B, dtype=torch.bool, device=device)
    length = torch.zeros(B, dtype=torch.long, device=device)
    cost_sum = torch.zeros(B, device=device)
    cost_n = torch.zeros(B, device=device)
    groups = _groups(attacker_of, len(attackers))
    for k, rows in groups:
        attackers[k].reset(len(rows), device)
    salts = attack_salts if attack_salts is not None else [_SALT_ATTACK + k for k in range(len(attackers))]
    if len(salts) != len(attackers):
        raise ValueError(f"{len(salts)} attack salts for {len(attackers)} attackers")
    malicious = _draw_malicious(team, team_of, attackers, groups, seeds, salts, n, device)
    hijacked = _draw_hijacked(attackers, groups, seeds, salts, n, device)
    _place_triggers(env, attackers, groups, cost_sum, cost_n)
    ts = env.reset(seeds=seeds)
    # Every per-row tensor below is indexed by the env's rows; `live` maps them to the batch.
    # Finished episodes are dropped from all of them at once (`env.keep_rows`), so the team,
    # the attackers and the environment step live rows only; each row's streams are its own,
    # so a kept episode plays exactly as it would in the full batch.
    rows_of = _RowState(
        live=torch.arange(B, device=device), seeds=seeds, team_of=team_of,
        attacker_of=attacker_of, malicious=malicious, hijacked=hijacked,
        hidden=team.initial_state(B, device), last=torch.zeros(B, n, A, device=device),
        sur_of={k: s[1].to(device) for k, s in (surrogates or {}).items()},
        sur_hidden={k: s[0].initial_state(B, device) for k, s in (surrogates or {}).items()},
    )
    # a caller's env keeps its batch: callers reuse it for the next call
    drop = drop_finished and own_env and env.can_drop_rows
    t = 0
    while not bool(ts.done.all()):
        if drop and bool(ts.done.any()):
            keep = (~ts.done).nonzero().flatten()
            ts = env.keep_rows(keep)
            rows_of = rows_of.take(keep)
            groups = _groups(rows_of.attacker_of, len(attackers))
        r = rows_of
        live = r.live
        active = ~ts.done
        seen = ts.obs.clone()
        shared, perturbed = [], []  # (attacker, its rows, generator or perturbed obs)
        for k, rows in groups:
            rows = rows[active[rows]]
            if surface(attackers[k]) in ("environment", "agent"):
                continue
            on_messages = surface(attackers[k]) == "message"
            if len(rows) == 0 or on_messages and t == 0:
                continue
            if freq is not None and freq[k] < 1.0:
                u = uniform_from(r.seeds[rows] ^ _SALT_FREQ, t, ()).view(-1)
                rows = rows[u < freq[k]]
                if len(rows) == 0:
                    continue
            if on_messages:
                cost_sum[live[rows]] += _alter_messages(team, r.hidden, attackers[k], rows,
                                                        r.team_of, r.malicious, ts, t,
                                                        r.seeds ^ salts[k], live)
                cost_n[live[rows]] += 1
                continue
            black_box = bool(surrogates) and k in surrogates
            if black_box:
                q_fn = _q_fn(surrogates[k][0], r.sur_hidden[k][rows], r.last[rows],
                             r.sur_of[k][rows])
            else:
                q_fn = _q_fn(team, r.hidden[rows], r.last[rows], r.team_of[rows])
            ctx = AttackContext(
                q_fn=q_fn, avail=ts.avail[rows], state=ts.state[rows], t=t, rows=live[rows],
                rand=Streams(r.seeds[rows] ^ salts[k], t),
            )
            if hasattr(attackers[k], "perturb_steps") and not black_box:
                shared.append((k, rows, attackers[k].perturb_steps(ts.obs[rows], ctx)))
                continue
            with torch.enable_grad():
                perturbed.append((k, rows, attackers[k].perturb(ts.obs[rows], ctx)))
        if shared:  # the gradient attacks of the team: one forward and backward per round
            outs = drive_together([g for *_, g in shared], [rows for _, rows, _ in shared],
                                  lambda rows: _q_fn(team, r.hidden[rows], r.last[rows],
                                                     r.team_of[rows]))
            perturbed += [(k, rows, out) for (k, rows, _), out in zip(shared, outs)]
        for k, rows, pert in perturbed:
            pert = pert.detach()
            delta = pert - ts.obs[rows]  # [R, n, o]; the budget holds per agent
            per_agent = delta.abs().amax(-1) if _norm(attackers[k]) == "linf" else delta.norm(dim=-1)
            cost_sum[live[rows]] += per_agent.amax(1)
            cost_n[live[rows]] += 1
            seen[rows] = pert
        with torch.no_grad():
            q, r.hidden = team.q_values(seen, r.hidden, r.last, r.team_of)
            for k, (sur, _) in (surrogates or {}).items():
                _, r.sur_hidden[k] = sur.q_values(seen, r.sur_hidden[k], r.last, r.sur_of[k])
        actions = greedy(q, ts.avail)
        for k, rows in groups:
            if surface(attackers[k]) == "agent":
                rows = _acting(rows, active, freq, k, r.seeds, t)
                if len(rows):
                    actions[rows] = _hijack(attackers[k], rows, r.hijacked[rows], actions[rows],
                                            ts, r.last, t, r.seeds ^ salts[k], live)
                    cost_sum[live[rows]] += r.hijacked[rows].sum(1).float()
                    cost_n[live[rows]] += 1
        r.last = torch.nn.functional.one_hot(actions, A).float()
        ts = env.step(actions)
        ret[live] += ts.reward
        won[live] = ts.won
        length[live] += active.long()
        t += 1
        if on_step is not None:
            on_step(t, B - len(live) + int(ts.done.sum()))
    return EpisodeStats(
        returns=ret.cpu(), wins=won.cpu(), lengths=length.cpu(),
        cost=(cost_sum / cost_n.clamp(min=1)).cpu(),
    )


@dataclass
class _RowState:
    """The rollout's per-row tensors, indexed like the environment's rows."""

    live: torch.Tensor  # [R] the batch row of each
    seeds: torch.Tensor
    team_of: torch.Tensor
    attacker_of: torch.Tensor
    malicious: torch.Tensor
    hijacked: torch.Tensor
    hidden: torch.Tensor
    last: torch.Tensor
    sur_of: dict
    sur_hidden: dict

    def take(self, keep: torch.Tensor) -> "_RowState":
        return _RowState(
            live=self.live[keep], seeds=self.seeds[keep], team_of=self.team_of[keep],
            attacker_of=self.attacker_of[keep], malicious=self.malicious[keep],
            hijacked=self.hijacked[keep], hidden=self.hidden[keep], last=self.last[keep],
            sur_of={k: v[keep] for k, v in self.sur_of.items()},
            sur_hidden={k: v[keep] for k, v in self.sur_hidden.items()},
        )


def _groups(attacker_of: torch.Tensor, count: int) -> list[tuple[int, torch.Tensor]]:
    """(attacker k, its rows) for every attacker with rows left."""
    groups = [(k, (attacker_of == k).nonzero().flatten()) for k in range(count)]
    return [(k, rows) for k, rows in groups if len(rows)]


class Streams:
    """rand(*shape) -> [R, *shape] uniforms, one stream per row; each call draws afresh."""

    def __init__(self, seeds: torch.Tensor, t: int):
        self.seeds, self.base, self.calls = seeds, t << 16, 0

    def __call__(self, *shape: int) -> torch.Tensor:
        self.calls += 1
        return uniform_from(self.seeds, self.base + self.calls, tuple(shape))


def surface(attacker) -> str:
    return getattr(attacker, "surface", "observation")


def _place_triggers(env, attackers, groups, cost_sum, cost_n) -> None:
    """Trigger sizes of every row (0 where no environment attacker plays) set on `env`."""
    on_env = [(k, rows) for k, rows in groups if surface(attackers[k]) == "environment"]
    if not on_env and not env.spec.triggers:
        return
    size = torch.zeros(env.B, device=env.device)
    for k, rows in on_env:
        size[rows] = float(attackers[k].trigger_size)
        cost_sum[rows] = float(attackers[k].trigger_size)
        cost_n[rows] = 1
    env.set_triggers(size)


def _acting(rows, active, freq, k, seeds, t) -> torch.Tensor:
    """The rows of attacker k that it acts on at step t: live ones, in the share `freq[k]`."""
    rows = rows[active[rows]]
    if freq is not None and freq[k] < 1.0 and len(rows):
        u = uniform_from(seeds[rows] ^ _SALT_FREQ, t, ()).view(-1)
        rows = rows[u < freq[k]]
    return rows


def _draw_hijacked(attackers, groups, seeds, salts, n, device) -> torch.Tensor:
    """bool [B, n]: each agent attacker's hijacked agents of its rows, drawn once per episode."""
    hijacked = torch.zeros(len(seeds), n, dtype=torch.bool, device=device)
    for k, rows in groups:
        if surface(attackers[k]) != "agent":
            continue
        hij = attackers[k].hijacked(n, Streams(seeds[rows] ^ salts[k] ^ _SALT_HIJACK, 0))
        if tuple(hij.shape) != (len(rows), n):
            raise ValueError(f"hijacked agents of shape {tuple(hij.shape)}, not {(len(rows), n)}")
        hijacked[rows] = hij.to(device=device, dtype=torch.bool)
    return hijacked


def _hijack(attacker, rows, hijacked, team_actions, ts, last, t, keys, live) -> torch.Tensor:
    """The rows' actions with the hijacked agents' replaced by the attacker's; ValueError when
    it picks an unavailable action for one of them."""
    ctx = AgentContext(hijacked=hijacked, obs=ts.obs[rows], avail=ts.avail[rows],
                       state=ts.state[rows], last_action=last[rows], t=t,
                       rand=Streams(keys[rows], t), rows=live[rows])
    with torch.no_grad():
        chosen = attacker.act(ctx)
    if tuple(chosen.shape) != tuple(team_actions.shape):
        raise ValueError(f"an agent attacker returned actions of shape {tuple(chosen.shape)}, "
                         f"not {tuple(team_actions.shape)}")
    out = torch.where(hijacked, chosen.to(team_actions), team_actions)
    legal = ctx.avail.gather(-1, out.unsqueeze(-1)).squeeze(-1)
    if not bool(legal[hijacked].all()):
        raise ValueError("an agent attacker chose an unavailable action for a hijacked agent")
    return out


def _draw_malicious(team, team_of, attackers, groups, seeds, salts, n, device) -> torch.Tensor:
    """bool [B, n]: each message attacker's malicious agents of its rows, drawn once per
    episode; the engine, not the attacker, then keeps every other agent's messages intact."""
    malicious = torch.zeros(len(seeds), n, dtype=torch.bool, device=device)
    for k, rows in groups:
        if surface(attackers[k]) != "message":
            continue
        if not hasattr(team, "messages") or bool((team.message_width(team_of[rows]) == 0).any()):
            raise ValueError("a message attacker plays against a team that sends no messages")
        mal = attackers[k].malicious(n, Streams(seeds[rows] ^ salts[k] ^ _SALT_MALICIOUS, 0))
        if tuple(mal.shape) != (len(rows), n):
            raise ValueError(f"malicious agents of shape {tuple(mal.shape)}, not {(len(rows), n)}")
        malicious[rows] = mal.to(device=device, dtype=torch.bool)
    return malicious


def _alter_messages(team, hidden, attacker, rows, team_of, malicious, ts, t, keys,
                    live) -> torch.Tensor:
    """Replace, in place in `hidden`, the in-transit messages of `rows` by the attacker's, for
    malicious agents only; returns the step's cost per row [R]: the largest per-agent L2 norm
    of the change. Rows are split by message width (members may differ): a few groups."""
    member = team_of[rows]
    width = team.message_width(member)
    cost = torch.zeros(len(rows), device=hidden.device)
    for w in torch.unique(width).tolist():
        sub = (width == w).nonzero().flatten()
        r, m_of, mal = rows[sub], member[sub], malicious[rows[sub]]
        h = hidden[r]
        msgs = team.messages(h, m_of)
        ctx = MessageContext(malicious=mal, avail=ts.avail[r], state=ts.state[r], t=t,
                             rand=Streams(keys[r], t), rows=live[r], obs=ts.obs[r])
        with torch.no_grad():
            out = attacker.message(msgs.clone(), ctx)
        if out.shape != msgs.shape:
            raise ValueError(f"a message attacker returned {tuple(out.shape)} for messages of "
                             f"shape {tuple(msgs.shape)}")
        out = torch.where(mal.unsqueeze(-1), out.detach().to(msgs.dtype), msgs)
        hidden[r] = team.with_messages(h, out, m_of)
        cost[sub] = (out - msgs).norm(dim=-1).amax(1)
    return cost


def _q_fn(team: Team, hidden, last, member) -> QFn:
    def q_fn(obs: torch.Tensor) -> torch.Tensor:
        return team.q_values(obs, hidden, last, member)[0]

    return q_fn


def _norm(attacker) -> str:
    return getattr(attacker, "norm", "linf")
