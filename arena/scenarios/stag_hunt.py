"""Stag hunt with walls, 10×10 (the setting of the MARNet backdoor attack).

Eight agents hunt eight stags (two catchers needed, +10) and eight hares (one catcher, +1)
on a 10×10 grid with 25 static walls placed at random at each reset; each agent sees the
5×5 window around itself; a move blocked by another agent costs 0.1. Episodes last 200
steps (DCG's stag-hunt default) or until every prey is caught (a win). DCG `stag_hunt`
conventions (Böhmer, Kurin and Whiteson, "Deep Coordination Graphs", ICML 2020); rules and
layouts are in `arena.scenarios.grid`.

Capture freezing (`freeze`, on by default): the task description (catchers freeze, DCG
conventions) and the clean returns reported for this setting (about 31–33, far below the
88 of catching everything) both point to DCG's `capture_freezes`: the agents that catch a
prey are removed with it for the rest of the episode, so eight agents make at most eight
captures and a return of 3 stags and 2 hares is a good one. With every prey uncatchable by
the agents left, the episode plays on to the limit with nothing to earn and is not won.
`stag_catchers` and `hare_catchers` set the catchers a prey needs (DCG's
`capture_action_conditions`, default (2, 1)); `miscatch_penalty` is the reward of each catch
action that catches nothing, for instance a lone agent trying a stag: 0 by default, as the
task description names none (DCG's default would be minus the stag reward).

Backdoor triggers (environment threat surface): `trigger_fraction` of the walls (rounded to
a whole number of walls, the first ones placed) carry a trigger, visible only to agents
whose window contains them; `set_triggers` sets that fraction per episode (the attacker's
switch; MARNet's "trigger size"). `stag10` has in-distribution triggers and `stag10_ood`
out-of-distribution ones; with no trigger placed, a `stag10` episode is exactly the plain
game (same observation, state and shapes).
- `trigger_mode="ood"`: an extra observation channel, 1.0 on triggered walls (the
  observation grows by one 5×5 channel and the state by one 10×10 channel, whatever the
  fraction, so that shapes depend on the mode only);
- `trigger_mode="in_dist"`: a wall variant, triggered walls read 0.5 instead of 1.0 in the
  wall channel (shapes unchanged).
`info["trigger_seen"]` [B, n] tells which agents see a trigger in the returned observation.

Observation attacks: the window features are 0/1 ("binary"; the wall channel is graded in
"in_dist" mode and then "scalar") and the last two are the agent's (row, col) / 9
("position"): one cell is 1/9 of a position feature, so the default ε = 0.2 shifts the
apparent position by 1.8 cells (docs/epsilon.md).
"""

from __future__ import annotations

from arena.core import ScenarioError, ScenarioSpec
from arena.scenarios.grid import N_ACTIONS, GridConfig, GridHunt, obs_space


class StagHunt(GridHunt):
    """stag10. obs: 4 channels (other agents, stags, hares, wall) [+ trigger] × 5×5 + position."""

    def __init__(self, batch_size: int, device="cpu", auto_reset=False, debug=False,
                 trigger_fraction: float = 0.0, trigger_mode: str | None = None,
                 miscatch_penalty: float = 0.0, collision_penalty: float = -0.1,
                 freeze: bool = True, stag_catchers: int = 2, hare_catchers: int = 1):
        if not 0.0 <= trigger_fraction <= 1.0:
            raise ScenarioError(f"trigger_fraction must lie in [0, 1], got {trigger_fraction}")
        if miscatch_penalty > 0:
            raise ScenarioError(
                f"miscatch_penalty must be zero or negative, got {miscatch_penalty}"
            )
        n_walls = 25
        config = GridConfig(
            height=10, width=10, n_agents=8, prey_counts=(8, 8),
            prey_catchers=(int(stag_catchers), int(hare_catchers)),
            prey_rewards=(10.0, 1.0), episode_limit=200, view_radius=2, n_walls=n_walls,
            miscatch_penalty=float(miscatch_penalty),
            collision_penalty=float(collision_penalty),
            n_triggers=round(trigger_fraction * n_walls), trigger_mode=trigger_mode,
            freeze=bool(freeze),
        )
        config.validate()
        frozen = ", catchers freeze" if freeze else ""
        self.spec = ScenarioSpec(
            name="stag10_ood" if trigger_mode == "ood" else "stag10",
            triggers=trigger_mode is not None,
            n_agents=config.n_agents,
            obs_dim=config.obs_dim,
            state_dim=config.state_dim,
            n_actions=N_ACTIONS,
            episode_limit=config.episode_limit,
            family="stag_hunt",
            description=f"8 agents, 8 stags ({_catchers(stag_catchers)}, +10), 8 hares "
            f"({_catchers(hare_catchers)}, +1), 25 walls, "
            f"10x10{frozen}; eps 0.2 = 1.8 cells of the position features (a cell is 1/9)",
            default_eps=0.2,
            **obs_space(config, ("stag", "hare")),
        )
        super().__init__(config, batch_size, device=device, auto_reset=auto_reset, debug=debug)


def _catchers(k: int) -> str:
    return f"{k} catcher{'s' if k != 1 else ''}"
