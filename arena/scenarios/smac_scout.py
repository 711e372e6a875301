"""A SMAC-style map where the team must talk: one spotter, two blind fighters, a hidden enemy.

NDQ's communication maps (Wang et al., "Learning Nearly Decomposable Value Functions via
Communication Minimization", ICLR 2020, Sec. 5) are built so that agents must be told what
only another sees. On 1o_2r_vs_4r an Overseer, a flying unit with a long sight, and two
Roaches face four Reapers the Roaches cannot see; the Overseer finds them, and the Roaches,
who do the fighting, win only when it tells them where the Reapers are.

`1o_2m_scout` is that situation built from SMAC's own units and rules (smac.SmacLite):

- 3 marines vs 1 marauder (the `3m_vs_1md` line-up of smac_units, not a SMAC map): obs 20,
  state 36, actions 7. One marauder because it outranges marines (6 against 5) and outlasts
  two of them: three marines kill it (scripted, all of 2000 games, losing one marine), two
  never do. With a single enemy there is no target to choose: the fight is easy, finding
  it is what is hard, as on NDQ's map. (A first version against 3 marines, a 3m fight, was
  measured too hard to learn at all, NDQ reaching a 0 % greedy win rate after 800k steps;
  against 2 marines the spotter and one blind marine already win 95 %.)
- The team starts at the map centre (16, 16); the enemy appears, per episode, at one of two
  places on the same line, 10 units west (6, 16) or east (26, 16), drawn with probability
  1/2 from the episode's stream (at 15 units, a first version, every learner below swung
  harder between one side's share and 0 %). Starts are otherwise SMAC's: the team in a
  column, small jitter.
- The enemy holds position (SC2's hold order): it never walks, and fires at the closest
  marine within its weapon range, keeping its target while that one stays in range. It
  cannot be lured, so no unit's movement tells anyone where it is.
- Agent 0, the spotter, sees twice SMAC's sight range (18, its distances and offsets divided
  by 18 so features stay within SMAC's [-1, 1]); it sees the enemy from the start. Unlike
  NDQ's Overseer it is a marine that fights, since we have no unit without a weapon; it
  cannot win alone.
- Agents 1 and 2 are blind: their enemy block and their ally block are zero at every
  distance, so what they observe is their move availability, their own health, and (as input
  to their network) their id and last action. The one thing a blind agent learns of the
  enemy by itself is that an attack action became available: it is already within 6 of it.
- The step limit is 24 (SMAC's 3m has 60). Walking into range of the right place takes 4
  steps and the fight about 14: scripted focus fire told the side wins every one of 2000
  games in 18 steps. A blind pair that walks one way and turns back when no attack comes up
  reaches the other place too late: turning after 1 to 13 steps, it wins games of both sides
  only from a limit of 28 (at 27, one side's at most).

Why messages are necessary, and what a team without them can win. Without messages the two
blind agents' observations are the same in both draws until an enemy is within 6 of one of
them (the state the mixer reads, which does show the enemy, is not an input of the agents).
Their opening walk is thus chosen without knowing the side, and the step limit leaves room
for one side only. So:
- both walk the same way: the right way in half the games (then 3 vs 1), the wrong way in
  the other half (the spotter alone, or all three too late);
- they split: every game is fought 2 vs 1 at best, the third marine arriving too late.
A team without messages thus wins at most about max(1/2 · P(3v1), P(2v1)) = 1/2, while a
team told the side can win P(3v1) ≈ 100 %. Scripted, on 2000 games: the blind pair walking
west wins 51 % (every west game, no east one), split 0 %, turning back after 1 to 13 steps
one side's games at most (tests/test_scout_map.py checks the told, the west-walking and the
turning teams).
The gap, about 50 points of win rate, is what the spotter's message is worth.
The step limit ends the battle, lost (`terminated`, not `truncated` as SMAC's limit): it is
the rule that makes the side worth knowing, and a learner that bootstraps past it is told
that walking the wrong way first costs nothing.

Learned teams get there in some seeds. Greedy win rate of 1000 games after 800k steps, ε
annealed over 300k, seed 0 unless said:
- NDQ without its message prior (β = 0), the limit ending the battle, as `arena reproduce
  s002` trains it (seeds 0, 1, 2): 52 %, 52 % and 100 %. The third team wins every game of
  both sides, and 0 % with every message zeroed: its messages carry the side, 48 points
  above the best play without them. The first two win every east game and no west one,
  and 0 % with messages zeroed: they rely on messages that do not carry the side. Four
  more seeds (3 to 6, trained the same way) end as those two, each winning all of one
  side's games: one team in seven learned the message gap. The same 52 % pattern with the
  limit truncating (swinging to 0 % on the way), while NDQ's β = 1e-3, σ capped at e^-2 or 4
  learner updates per collection ended at 0 %.
- at 15 units and a limit of 30 (the first version): NDQ β = 0, 1.2M steps, 52 % and 0 %
  zeroed as above; β = 1e-3, seeds 0 and 1, 0 % and 52 % (the same with messages zeroed),
  the test rate swinging between 0 and one side's share (once 72 %); the lr halved and targets
  updated half as often, 24 %, messages unused; QMIX (no messages, seed 1), 0 %.
- a diagnostic, not this map: QMIX with every agent seeing everything reached 100 % at a few
  test points (180k, 220k; 100k and 360k with the limit ending the battle), one side's
  share or 0 % in between. The swings are thus Q-learning's on this map, not the messages'.

Everything else (damage, cooldowns, reward, state, SMAC's shoot range 6 for every agent)
is smac.SmacLite's, unchanged.
"""

from __future__ import annotations

import dataclasses

import torch

from arena.scenarios.smac import SmacLite, _formation, _roster, _smac_order
from arena.scenarios.smac_obs import agent_obs, global_state
from arena.scenarios.smac_units import SIGHT_RANGE

TEAM_START = (16.0, 16.0)  # the map centre: both places are equally far
PLACES = ((6.0, 16.0), (26.0, 16.0))  # west, east: 10 units from the team, 20 apart
SPOTTER_SIGHT = 2 * SIGHT_RANGE  # sees either place from the start (about 10.3 away at most)
SCOUT_LIMIT = 24  # one place can be reached and cleared, not both


class ScoutSmac(SmacLite):
    """SmacLite with a far-sighted spotter (agent 0), blind agents, and a holding enemy drawn
    at one of `PLACES` per episode (see the module docstring)."""

    _row_state = SmacLite._row_state + ("place",)

    def __init__(self, batch_size: int, device="cpu", auto_reset: bool = False,
                 debug: bool = False, map_name: str = "3m_vs_1md", name: str = "1o_2m_scout",
                 episode_limit: int = SCOUT_LIMIT):
        super().__init__(batch_size, device=device, auto_reset=auto_reset, debug=debug,
                         map_name=map_name)
        n, m, dev = self.n_agents, self.n_enemies, self.device
        self.spec = dataclasses.replace(
            self.spec, name=name, episode_limit=int(episode_limit), messages=True,
            description=f"SMAC-style scouting after NDQ's 1o_2r_vs_4r: "
            f"{_roster(self.map.allies)} vs {_roster(self.map.enemies)} holding at one of "
            f"{len(PLACES)} places drawn per episode; agent 0 sees {SPOTTER_SIGHT:g} away "
            f"(its distances /{SPOTTER_SIGHT:g}), agents 1..{n - 1} see no unit; eps "
            f"{self.map.default_eps:g} on features in [0, 1] and [-1, 1]",
        )
        ally_slots, self._jitter_group = _smac_order(
            self.map.allies, _formation(n, TEAM_START, -1.0, dev))
        # enemies are laid out around the origin and shifted to the drawn place at reset
        self._home = torch.cat([ally_slots, _formation(m, (0.0, 0.0), +1.0, dev)])
        self._places = torch.tensor(PLACES, device=dev)  # [K, 2]
        self._sight = torch.full((n,), SIGHT_RANGE, device=dev)
        self._sight[0] = SPOTTER_SIGHT
        self.place = torch.zeros(self.B, dtype=torch.long, device=dev)  # [B] index into PLACES
        self.units.pos = self._home.expand(self.B, self.n_units, 2).clone()

    def _reset_rows(self, rows: torch.Tensor) -> None:
        super()._reset_rows(rows)
        n = self.n_agents
        place = self.randint(len(PLACES), self.B)  # [B]; every row draws, as the contract asks
        self.place = torch.where(rows, place, self.place)
        shift = self._places[self.place]  # [B, 2]
        enemy = torch.arange(self.n_units, device=self.device) >= n  # [U]
        moved = rows[:, None, None] & enemy[None, :, None]
        self.units.pos = torch.where(moved, self.units.pos + shift[:, None, :], self.units.pos)

    def _step_active(self, actions, active):
        # The step limit is a rule of this map (the time to clear one place), so reaching it
        # ends the battle lost instead of truncating an episode that would go on: a learner
        # that bootstraps past the limit sees no cost in walking the wrong way first.
        reward, terminated, won, info = super()._step_active(actions, active)
        out_of_time = active & (self.t + 1 >= self.spec.episode_limit)
        return reward, terminated | out_of_time, won, info

    def _orders(self, actions, alive, dist, gap):
        # Hold position: targets as SmacLite's enemy picks them (in weapon range only, so it
        # never chases), no walking toward seen allies or the allies' start.
        target, goal, limit, has_goal = super()._orders(actions, alive, dist, gap)
        has_goal = has_goal.clone()
        has_goal[:, self.n_agents:] = False
        return target, goal, limit, has_goal

    def _observe(self):
        s, lay = self.units, self.layout
        avail = self._avail()
        obs = agent_obs(lay, self.table, s.pos, s.hp, s.shield, avail, self._others,
                        sight=self._sight)
        blocks = lay.obs_blocks()
        obs[:, 1:, blocks["enemy"]] = 0.0
        obs[:, 1:, blocks["ally"]] = 0.0
        state = global_state(lay, self.table, s.pos, s.hp, s.shield, s.cooldown, s.last_action)
        return obs, state, avail
