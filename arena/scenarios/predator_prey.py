"""Predator-prey, 3 predators / 6 prey / 7×7 (the ℜ-MACRL and CommNet setting).

Three predators hunt six prey on a 7×7 grid, each seeing the 3×3 window around itself.
A prey is caught when at least two adjacent predators choose catch in the same step: +10
team reward per prey, and `penalty` (0 for `pp7`, -0.5 for `pp7_p05`) for each catch
action that catches nothing. Episodes last 60 steps or until every prey is caught (a win).
This is the DCG `stag_hunt` environment with world 7×7, view radius 1, 3 agents, 6 stags,
stag reward 10 and miscapture penalty p; rules and layouts are in `arena.scenarios.grid`.

Observation attacks: the 27 window features are 0/1 ("binary") and the last two are the
predator's (row, col) / 6 ("position"), so one cell is 1/6 of a position feature and the
default budget ε = 0.2 shifts the apparent position by 1.2 cells (docs/epsilon.md).
"""

from __future__ import annotations

from arena.core import ScenarioError, ScenarioSpec
from arena.scenarios.grid import N_ACTIONS, GridConfig, GridHunt, obs_space

_NAMES = {0.0: "pp7", -0.5: "pp7_p05"}


class PredatorPrey(GridHunt):
    """pp7 / pp7_p05. obs: 3 channels (other agents, prey, wall/outside) × 3×3 + position."""

    def __init__(self, batch_size: int, device="cpu", auto_reset=False, debug=False,
                 penalty: float = 0.0):
        if penalty > 0:
            raise ScenarioError(f"penalty must be zero or negative, got {penalty}")
        config = GridConfig(
            height=7, width=7, n_agents=3, prey_counts=(6,), prey_catchers=(2,),
            prey_rewards=(10.0,), episode_limit=60, view_radius=1,
            miscatch_penalty=float(penalty),
        )
        self.spec = ScenarioSpec(
            name=_NAMES.get(float(penalty), f"pp7_p{abs(penalty):g}"),
            n_agents=config.n_agents,
            obs_dim=config.obs_dim,
            state_dim=config.state_dim,
            n_actions=N_ACTIONS,
            episode_limit=config.episode_limit,
            family="predator_prey",
            description=f"3 predators, 6 prey, 7x7, catch needs 2, miscatch {penalty:g}; "
            "eps 0.2 = 1.2 cells of the position features (a cell is 1/6)",
            default_eps=0.2,
            **obs_space(config, ("prey",)),
        )
        super().__init__(config, batch_size, device=device, auto_reset=auto_reset, debug=debug)
