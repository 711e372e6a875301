"""Stag hunt with walls, 10×10 (the setting of the MARNet backdoor attack).

Eight agents hunt eight stags (two catchers needed, +10) and eight hares (one catcher, +1)
on a 10×10 grid with 25 static walls placed at random at each reset; each agent sees the
5×5 window around itself; a move blocked by another agent costs 0.1. Episodes last 200
steps (DCG's stag-hunt default) or until every prey is caught (a win). DCG `stag_hunt`
conventions; rules and layouts are in `arena.scenarios.grid`.

Backdoor triggers (environment threat surface): `trigger_fraction` of the walls (rounded to
a whole number of walls, the first ones placed) carry a trigger, visible only to agents
whose window contains them.
- `trigger_mode="ood"`: an extra observation channel, 1.0 on triggered walls (the
  observation grows by one 5×5 channel and the state by one 10×10 channel, whatever the
  fraction, so that shapes depend on the mode only);
- `trigger_mode="in_dist"`: a wall variant, triggered walls read 0.5 instead of 1.0 in the
  wall channel (shapes unchanged).
`info["trigger_seen"]` [B, n] tells which agents see a trigger in the returned observation.
"""

from __future__ import annotations

from arena.core import ScenarioError, ScenarioSpec
from arena.scenarios.grid import N_ACTIONS, GridConfig, GridHunt


class StagHunt(GridHunt):
    """stag10. obs: 4 channels (other agents, stags, hares, wall) [+ trigger] × 5×5 + position."""

    def __init__(self, batch_size: int, device="cpu", auto_reset=False, debug=False,
                 trigger_fraction: float = 0.0, trigger_mode: str | None = None,
                 miscatch_penalty: float = 0.0, collision_penalty: float = -0.1):
        if not 0.0 <= trigger_fraction <= 1.0:
            raise ScenarioError(f"trigger_fraction must lie in [0, 1], got {trigger_fraction}")
        n_walls = 25
        config = GridConfig(
            height=10, width=10, n_agents=8, prey_counts=(8, 8), prey_catchers=(2, 1),
            prey_rewards=(10.0, 1.0), episode_limit=200, view_radius=2, n_walls=n_walls,
            miscatch_penalty=float(miscatch_penalty),
            collision_penalty=float(collision_penalty),
            n_triggers=round(trigger_fraction * n_walls), trigger_mode=trigger_mode,
        )
        config.validate()
        self.spec = ScenarioSpec(
            name="stag10",
            n_agents=config.n_agents,
            obs_dim=config.obs_dim,
            state_dim=config.state_dim,
            n_actions=N_ACTIONS,
            episode_limit=config.episode_limit,
            family="stag_hunt",
            description="8 agents, 8 stags (2 catchers, +10), 8 hares (+1), 25 walls, 10x10",
        )
        super().__init__(config, batch_size, device=device, auto_reset=auto_reset, debug=debug)
