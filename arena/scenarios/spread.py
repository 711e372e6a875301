"""MPE cooperative navigation, `simple_spread` (Lowe et al. 2017, "Multi-Agent Actor-Critic
for Mixed Cooperative-Competitive Environments", the cooperative navigation task),
stepped by the torch-vectorised VMAS simulator (Bettini et al. 2022).

n agents (3) must cover n landmarks (3) in 25 steps. What this wrapper fixes:

- Actions: the 5 discrete MPE actions 0 stay, 1 left (−x), 2 right (+x), 3 down (−y),
  4 up (+y), all always available. VMAS's discrete space is the 3×3 product of per-axis
  choices (9 actions, diagonals included); the 5 map to VMAS's flat indices 0, 3, 6, 1, 2.
- Reward: VMAS returns one shared value per episode, r = −n·Σ_l min_a ‖p_a − p_l‖ −
  Σ_{a≠b} 1[a, b overlap] (a collision counts once per agent involved). It equals the sum
  over agents of the per-agent MPE reward, the team reward of MPE's shared-reward mode, and
  it is the team reward here.
- Observation of agent i: VMAS's, i.e. (p_i, v_i, p_l − p_i for each landmark, p_j − p_i
  for each other agent), 4 + 2n + 2(n − 1) = 14 numbers for n = 3.
- State: the absolute positions and velocities of the agents, then the landmark positions:
  6n = 18 numbers.
- Episodes last `episode_limit` steps and end by truncation, so `won` is always False (the
  task has no win). `info["occupied"]` counts the landmarks with an agent within 0.1 (MPE's
  benchmark figure) after each step.
- Randomness: resets draw agent and landmark positions uniformly in [−1, 1]² (VMAS's own
  reset distribution) from `self.rng`, and write them into the VMAS world; VMAS's own random
  state is never used after construction (its noise terms are 0 in this scenario), so the
  same seed gives the same trajectory, and the global torch RNG is left untouched.
- Observation bounds (`obs_space`): VMAS's world has no walls, so the declared ranges are a
  worst-case envelope (every step pushed by the largest action and contact forces, from the
  start box [−1, 1]²): about ±55 in position and ±24 in speed for 3 agents and 25 steps,
  while random play stays within about ±3. ε is in world units: the start box is 2 wide
  and an agent's radius 0.15, so the default ε = 0.2 moves an apparent position by 1.3
  radii.
- Freezing: VMAS steps every row; the positions and velocities of finished rows are put back
  after each step, and their cached observation is returned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import vmas  # a missing package surfaces as the registry's one-line "unavailable" error

from arena.core import ScenarioError, ScenarioSpec, VecEnv, config_from_options

# VMAS flat discrete index (x choice · 3 + y choice; per axis 0 stay, 1 −, 2 +) of each
# MPE action: stay, left, right, down, up.
MPE_TO_VMAS = (0, 3, 6, 1, 2)
OCCUPIED_DIST = 0.1


@dataclass(frozen=True)
class SpreadConfig:
    n_agents: int = 3
    """Agents, and as many landmarks."""
    episode_limit: int = 25

    def validate(self) -> None:
        if self.n_agents < 1:
            raise ScenarioError(f"n_agents must be at least 1, got {self.n_agents}")
        if self.episode_limit < 1:
            raise ScenarioError(f"episode_limit must be at least 1, got {self.episode_limit}")


def obs_space(env, n: int, episode_limit: int) -> dict:
    """ScenarioSpec keyword arguments `obs_low`, `obs_high`, `obs_groups` of a VMAS world.

    Per axis, a step adds at most (u_range + (n − 1) · contact force · deepest penetration)
    · dt / mass to the speed after drag, and speed · dt to the position.
    """
    world, agent = env.world, env.world.agents[0]
    radius = agent.shape.radius
    margin = world._contact_margin
    depth = margin * math.log1p(math.exp(2 * radius / margin))  # softplus penetration at 0
    force = agent.u_range + (n - 1) * world._collision_force * depth
    speed, reach = 0.0, 1.0
    for _ in range(episode_limit):
        speed = speed * (1 - world._drag) + force / agent.mass * world.dt
        reach += speed * world.dt
    spans = [("own_position", 2, reach), ("velocity", 2, speed),
             ("landmarks", 2 * n, 1.0 + reach), ("others", 2 * (n - 1), 2 * reach)]
    low, high, groups, i = [], [], {}, 0
    for name, size, bound in spans:
        low += [-bound] * size
        high += [bound] * size
        groups[name] = tuple(range(i, i + size))
        i += size
    groups["position"] = groups["own_position"] + groups["landmarks"] + groups["others"]
    groups["scalar"] = groups["velocity"]
    groups["binary"] = ()
    return {"obs_low": tuple(low), "obs_high": tuple(high), "obs_groups": groups}


def _make_vmas(batch_size: int, device: torch.device, n_agents: int):
    # VMAS's constructor resets its world with the global RNG of the device; forking keeps
    # the caller's random state as it was.
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        return vmas.make_env(
            "simple_spread",
            num_envs=batch_size,
            device=device,
            continuous_actions=False,
            n_agents=n_agents,
            seed=0,
        )


class Spread(VecEnv):
    def __init__(
        self,
        batch_size: int,
        device: str | torch.device = "cpu",
        auto_reset: bool = False,
        debug: bool = False,
        **options,
    ):
        super().__init__(batch_size, device=device, auto_reset=auto_reset, debug=debug)
        self.cfg = cfg = config_from_options(SpreadConfig, options, "spread")
        n = cfg.n_agents
        self._env = _make_vmas(self.B, self.device, n)
        self.spec = ScenarioSpec(
            name="spread",
            n_agents=n,
            obs_dim=4 + 2 * n + 2 * (n - 1),
            state_dim=6 * n,
            n_actions=len(MPE_TO_VMAS),
            episode_limit=cfg.episode_limit,
            messages=False,
            family="mpe",
            description=(
                f"MPE simple_spread (VMAS): {n} agents cover {n} landmarks, "
                f"{cfg.episode_limit} steps, shared reward; eps in world units (start box 2 wide)"
            ),
            default_eps=0.2,
            **obs_space(self._env, n, cfg.episode_limit),
        )
        self._agents = self._env.world.agents
        self._landmarks = self._env.world.landmarks
        self._to_vmas = torch.tensor(MPE_TO_VMAS, device=self.device)
        self._obs = torch.zeros(self.B, n, self.spec.obs_dim, device=self.device)

    # -- VMAS access ---------------------------------------------------------------------------
    def _vmas_obs(self) -> torch.Tensor:
        obs = self._env.get_from_scenario(
            get_observations=True, get_rewards=False, get_infos=False, get_dones=False
        )[0]
        return torch.stack(obs, 1)  # [B, n, obs_dim]

    def _occupied(self) -> torch.Tensor:
        agents = torch.stack([a.state.pos for a in self._agents], 1)  # [B, n, 2]
        marks = torch.stack([m.state.pos for m in self._landmarks], 1)  # [B, n, 2]
        dist = (marks.unsqueeze(2) - agents.unsqueeze(1)).norm(dim=-1)  # [B, landmarks, agents]
        return (dist.amin(-1) < OCCUPIED_DIST).sum(-1).float()  # [B]

    # -- contract ------------------------------------------------------------------------------
    def _reset_rows(self, rows: torch.Tensor) -> None:
        self._env.world.reset(rows)  # zero velocities, forces and actions of those rows
        entities = self._agents + self._landmarks
        pos = self.rand(self.B, len(entities), 2) * 2.0 - 1.0  # [B, 2n, 2], uniform in [−1, 1]²
        keep = ~rows.unsqueeze(-1)
        for k, e in enumerate(entities):  # 2n entities: a small fixed loop
            e.set_pos(torch.where(keep, e.state.pos, pos[:, k]), batch_index=None)
        self._obs = torch.where(keep.unsqueeze(-1), self._obs, self._vmas_obs())

    def _step_active(self, actions: torch.Tensor, active: torch.Tensor):
        before = [(a.state.pos.clone(), a.state.vel.clone()) for a in self._agents]
        vmas_actions = self._to_vmas[actions]  # [B, n]
        obs, rews, _, _ = self._env.step([vmas_actions[:, i] for i in range(len(self._agents))])
        still = ~active.unsqueeze(-1)
        for a, (pos, vel) in zip(self._agents, before):
            a.set_pos(torch.where(still, pos, a.state.pos), batch_index=None)
            a.set_vel(torch.where(still, vel, a.state.vel), batch_index=None)
        self._obs = torch.where(still.unsqueeze(-1), self._obs, torch.stack(obs, 1))
        reward = rews[0]  # the shared team value (every agent gets the same)
        never = torch.zeros_like(active)
        return reward, never, never, {"occupied": self._occupied()}

    def _observe(self):
        state = torch.cat(
            [a.state.pos for a in self._agents]
            + [a.state.vel for a in self._agents]
            + [m.state.pos for m in self._landmarks],
            -1,
        )  # [B, 6n]
        avail = torch.ones(
            self.B, self.spec.n_agents, self.spec.n_actions, dtype=torch.bool, device=self.device
        )
        return self._obs.clone(), state, avail
