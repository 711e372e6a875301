"""League records → the players of one batch (arena.payoff.Lineup).

Defenders are plain teams (qmix, vdn, commnet, tarmac, ndq), message filters in front of a
communicating team (msg_filter), or mixtures of them; attackers are
parameter-only kinds (none, random, fgsm, pgd; msg_random on the message surface), learned
ones (atla, pa_ad; msg_ppo on the message surface), hijacked teammates (takeover_random,
takeover_ppo, takeover_dev on the agent surface), backdoors (marnet, trojdrl, mtl,
honest: at play they place their trigger) or mixtures of attackers. Every distinct
team becomes one member of a StackedTeam; a mixture lists its members with weights and one is
drawn per episode. A table with a message attacker needs every defender to communicate (and a
learned one, messages of the width it was trained on): its cells are all played in one batch.
"""

from __future__ import annotations

from arena.payoff import Lineup
from arena.rollout import stream_salt, surface
from arena.scenarios import spec as scenario_spec
from policies.agent import AGENT_ATTACKS, LEARNED_AGENT_ATTACKS, build_agent_attack
from policies.backdoor import BACKDOOR_ATTACKS
from policies.backdoor.trigger import build_trigger
from policies.errors import PolicyError
from policies.kinds import KindError, check_targets, get_kind
from policies.message.attacks import (
    LEARNED_MESSAGE_ATTACKS, MESSAGE_ATTACKS, build_message_attack,
)
from policies.observation import atla, pa_ad  # noqa: F401  (they register their builders)
from policies.observation.attacks import ATTACKS, build_attack, feature_mask
from policies.observation.learned import LEARNED_ATTACKERS
from policies.teams.stacked_team import COMMUNICATING, StackedTeam
from policies.weights import check_finite, load_named
from store import NO_ATTACK

TEAM_KINDS = ("qmix", "vdn", "commnet", "tarmac", "ndq", "msg_filter", "mappo", "dop")


def check_role(info, role: str) -> None:
    if info.role != role:
        article = {"defender": "a", "attacker": "an"}
        raise PolicyError(f"{info.ref} is {article[info.role]} {info.role}, not "
                          f"{article[role]} {role} (write DEFENDER vs ATTACKER)")


def check_scenario(info, scenario: str) -> None:
    if info.scenario not in ("any", scenario):
        raise PolicyError(
            f"{info.ref} was made for scenario {info.scenario}, not {scenario}"
        )


def agent_from_record(rec, device="cpu"):
    """The agent network of a stored team (mixer weights are not needed to act); a message
    filter's is its base agent behind the filter."""
    from policies.teams.networks import build_networks

    if rec.kind == "msg_filter":
        from policies.message.msg_filter import build_filter_agent

        return build_filter_agent(rec.config, rec.weights, device)

    agent, _ = build_networks(rec.config, device)
    load_named(agent, rec.weights, "agent.", f"agent network of {rec.ref}")
    return agent.eval()


class _Teams:
    """Distinct team records, loaded once, in member order."""

    def __init__(self, lg, scenario, device):
        self.lg, self.scenario, self.device = lg, scenario, device
        self.refs: list[str] = []
        self.agents: list = []

    def member(self, ref: str) -> int:
        full = self.lg.resolve(ref)
        if full in self.refs:  # mixtures repeat members: read and verify each once
            return self.refs.index(full)
        rec = self.lg.get(full, usable=True)
        check_finite(rec.weights, rec.ref)
        check_role(rec, "defender")
        check_scenario(rec, self.scenario)
        if rec.kind == "recipe":
            raise PolicyError(f"{rec.ref} is a learner recipe, not a team: its teams are "
                              f"trained by `arena matrix --surface training`")
        if rec.kind not in TEAM_KINDS:
            raise PolicyError(f"{rec.ref} is of kind {rec.kind}, which cannot play as a team")
        spec = scenario_spec(self.scenario)
        cfg = rec.config
        if (cfg.get("obs_dim"), cfg.get("n_agents"), cfg.get("n_actions")) != (
            spec.obs_dim, spec.n_agents, spec.n_actions
        ):
            raise PolicyError(f"{rec.ref} does not fit scenario {self.scenario}'s shapes")
        self.refs.append(rec.ref)
        self.agents.append(agent_from_record(rec, self.device))
        return len(self.refs) - 1


def members_of(info) -> list[tuple[str, float]]:
    """(ref, weight) of what a policy plays: itself, or a mixture's members."""
    if info.kind != "mixture":
        return [(info.ref, 1.0)]
    members = info.config.get("members", [])
    if not members:
        raise PolicyError(f"{info.ref} is a mixture with no members")
    out = []
    for m in members:
        ref, w = m["ref"], float(m["weight"])
        if w > 0:
            out.append((ref, w))
    if not out:
        raise PolicyError(f"{info.ref} is a mixture whose weights are all zero")
    return out


def build_lineup(lg, scenario: str, defenders: list[str], attackers: list[str],
                 device="cpu") -> Lineup:
    """Players for `defenders` × `attackers` on `scenario`; refs must be resolved name@vK."""
    spec = scenario_spec(scenario)
    teams = _Teams(lg, scenario, device)
    members = []
    for ref in defenders:
        info = lg.info(ref, usable=True)
        check_role(info, "defender")
        check_scenario(info, scenario)
        members.append([(teams.member(r), w) for r, w in members_of(info)])
    objs, freq, surrogates, att_members, salts = [], [], {}, [], []
    for ref in attackers:
        if ref == NO_ATTACK:
            refs = [(NO_ATTACK, 1.0)]
        else:
            info = lg.info(ref, usable=True)
            check_role(info, "attacker")
            check_scenario(info, scenario)
            refs = members_of(info)
        entry = []
        for r, w in refs:
            if r == NO_ATTACK:  # a mixture may keep the clean column as a member
                entry.append((len(objs), w))
                objs.append(build_attack("none", {}, spec.n_agents))
                freq.append(1.0)
                salts.append(stream_salt(NO_ATTACK))
                continue
            rec = lg.get(r, usable=True)
            check_role(rec, "attacker")
            check_scenario(rec, scenario)
            entry.append((len(objs), w))
            obj, f, sur = _attacker(lg, rec, spec, scenario, device)
            if sur is not None:
                surrogates[len(objs)] = sur
            objs.append(obj)
            freq.append(f)
            salts.append(stream_salt(rec.ref))
        att_members.append(entry)
    _check_communicating(lg, teams, defenders, members, attackers, att_members, objs)
    team = StackedTeam(teams.agents, spec.n_agents, spec.n_actions, device) if teams.agents else None
    return Lineup(team=team, defenders=list(defenders), members=members,
                  attackers=list(attackers), attacker_objs=objs, freq=freq,
                  surrogates=surrogates, attacker_members=att_members, attacker_salts=salts)


def _check_communicating(lg, teams, defenders, members, attackers, att_members, objs) -> None:
    """One line when a message attacker meets a defender with a member that sends no messages."""
    on_messages = [a for a, entry in zip(attackers, att_members)
                   if any(surface(objs[i]) == "message" for i, _ in entry)]
    if not on_messages:
        return
    for d, entry in zip(defenders, members):
        for m, _ in entry:
            ref = teams.refs[m]
            what = d if ref == d else f"{d} (member {ref})"
            if teams.agents[m].layout[0] not in COMMUNICATING:
                kind = lg.info(ref).kind
                raise PolicyError(f"{on_messages[0]} attacks messages, but {what} is a {kind} "
                                  f"team, which sends none: message attackers play against "
                                  f"communicating teams such as commnet")
            width = getattr(teams.agents[m], "msg_dim", None)
            for a, a_entry in zip(attackers, att_members):
                for i, _ in a_entry:
                    need = getattr(objs[i], "msg_dim", None)
                    if need is not None and need != width:
                        raise PolicyError(f"{a} was trained on {need}-wide messages, but {what} "
                                          f"sends {width}-wide ones")


def _attacker(lg, rec, spec, scenario, device):
    check_finite(rec.weights, rec.ref)
    kind = get_kind(rec.kind)
    try:
        config = kind.make_config(rec.config) if kind.params else dict(rec.config)
        # a scenario-free attacker (scenario "any") meets its scenario only here
        check_targets(config, spec.n_agents, scenario)
        feature_mask(config.get("groups", "all"), spec)  # its feature groups, too
    except (KindError, PolicyError) as exc:
        raise PolicyError(f"{rec.ref}: {exc}") from None
    if rec.kind in BACKDOOR_ATTACKS:
        obj = build_trigger(rec, spec)
    elif rec.kind in AGENT_ATTACKS + LEARNED_AGENT_ATTACKS:
        obj = build_agent_attack(rec, spec, device)
    elif rec.kind in MESSAGE_ATTACKS:
        obj = build_message_attack(rec.kind, config, spec.n_agents)
    elif rec.kind in LEARNED_MESSAGE_ATTACKS:
        obj = LEARNED_MESSAGE_ATTACKS[rec.kind](rec, spec, device)
    elif rec.kind in ATTACKS:
        # the scenario supplies the feature groups and the bounds the attack clips to
        obj = build_attack(rec.kind, config, spec.n_agents, spec)
    elif rec.kind in LEARNED_ATTACKERS:
        obj = LEARNED_ATTACKERS[rec.kind](rec, spec, device)
    elif kind.surface == "training":
        raise PolicyError(f"{rec.ref} is a training-time attacker: it acts while a team trains, "
                          f"never in a match; `arena matrix --surface training` trains its cells")
    else:
        raise PolicyError(f"{rec.ref} is of kind {rec.kind}, which cannot attack observations")
    sur = None
    if config.get("surrogate"):
        from policies.names import resolve_for

        teams = _Teams(lg, scenario, device)
        teams.member(resolve_for(lg, config["surrogate"], scenario))
        sur = (StackedTeam(teams.agents, spec.n_agents, spec.n_actions, device), [(0, 1.0)])
    return obj, float(config.get("freq", 1.0)), sur


