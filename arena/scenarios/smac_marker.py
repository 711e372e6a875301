"""3m with a backdoor trigger the agents can see: markers on the battlefield.

MARNet ("MARNet: Backdoor Attacks against Cooperative Multi-Agent Reinforcement
Learning") attacks through the environment: the attacker places a trigger the
agents can see, with a size parameter, in the episodes it chooses, and a backdoored team
behaves differently when it sees it. `3m_marker` is that surface on SMAC's 3m
(smac.SmacLite, unchanged rules):

- Each episode has M = 20 candidate marker spots, drawn uniformly at reset in the box where
  the fight happens: both teams' starts (ALLY_START, ENEMY_START) with `MARGIN` units around
  them. The first k = round(size · M) spots carry a marker, where size is the row's trigger
  size (`trigger_fraction` for every row, 0 by default; `set_triggers(size [B] or scalar)`
  changes it per row from the row's next reset on).
- No extra draws: the spots are drawn in every reset whatever the size (one draw of
  [B, M, 2]), so a row's jitter, units and enemy behaviour are the same with and without
  its trigger, and with size 0 in every row an episode is 3m's episode exactly (same seed,
  same actions; under `auto_reset` the later episodes' jitter differs from plain 3m's, since
  the marker draw advances the stream, but still not with the size).
- Markers are static map features: they change no dynamics, reward or state.

Observation: 3m's, then three features per agent: `marker_visible` (1 when a live agent has
a marker strictly within SIGHT_RANGE, SMAC's "seen" rule for units), `marker_dx`,
`marker_dy` (marker − agent of the nearest visible marker, divided by the sight range as
SMAC's unit offsets are; 0, 0 when none is visible). A dead agent's features are all 0, as
SMAC zeroes a dead agent's observation. Spec groups: `marker_visible` is "binary", the
offsets are "position" in [-1, 1], and "marker" holds the three. The state is 3m's.

`info["trigger_seen"]` [B, n] of every TimeStep: the agents whose observation shows a
marker (marker_visible = 1).
"""

from __future__ import annotations

import dataclasses

import torch

from arena.core import ScenarioError
from arena.scenarios.smac import SmacLite
from arena.scenarios.smac_units import ALLY_START, ENEMY_START, SIGHT_RANGE

N_MARKERS = 20  # candidate spots per episode; a trigger of size s marks round(s · 20)
MARGIN = 4.0  # map units around the two starts where markers may lie
MARKER_FEATURES = ("marker_visible", "marker_dx", "marker_dy")


class MarkerSmac(SmacLite):
    """3m with per-episode visible markers, the backdoor trigger (see the module docstring).

    Per-episode tensors: marker_pos [B, M, 2] map units, marker_on [B, M] bool (the spots
    that carry a marker), n_markers [B] long (markers of each row's next reset).
    """

    _row_state = SmacLite._row_state + ("marker_pos", "marker_on", "n_markers", "_trigger_seen")

    def __init__(self, batch_size: int, device="cpu", auto_reset: bool = False,
                 debug: bool = False, trigger_fraction: float = 0.0):
        if not 0.0 <= float(trigger_fraction) <= 1.0:
            raise ScenarioError(f"trigger_fraction must lie in [0, 1], got {trigger_fraction}")
        super().__init__(batch_size, device=device, auto_reset=auto_reset, debug=debug,
                         map_name="3m")
        base, dev = self.spec, self.device
        d = base.obs_dim
        groups = dict(base.obs_groups)
        groups["binary"] = groups["binary"] + (d,)
        groups["position"] = groups["position"] + (d + 1, d + 2)
        groups["marker"] = (d, d + 1, d + 2)
        self.spec = dataclasses.replace(
            base, name="3m_marker", obs_dim=d + len(MARKER_FEATURES), triggers=True,
            obs_low=base.obs_low + (0.0, -1.0, -1.0), obs_high=base.obs_high + (1.0, 1.0, 1.0),
            obs_groups=groups,
            description=base.description + f"; backdoor trigger: up to {N_MARKERS} markers "
            f"on the battlefield, seen within {SIGHT_RANGE:g} (3 extra features)",
        )
        lo = (min(ALLY_START[0], ENEMY_START[0]) - MARGIN,
              min(ALLY_START[1], ENEMY_START[1]) - MARGIN)
        hi = (max(ALLY_START[0], ENEMY_START[0]) + MARGIN,
              max(ALLY_START[1], ENEMY_START[1]) + MARGIN)
        self._box_lo = torch.tensor(lo, device=dev)  # [2]
        self._box_size = torch.tensor(hi, device=dev) - self._box_lo  # [2]
        B, n = self.B, self.n_agents
        self.marker_pos = torch.zeros(B, N_MARKERS, 2, device=dev)  # [B, M, 2]
        self.marker_on = torch.zeros(B, N_MARKERS, dtype=torch.bool, device=dev)  # [B, M]
        self.n_markers = torch.full(  # [B]
            (B,), round(float(trigger_fraction) * N_MARKERS), dtype=torch.long, device=dev)
        self._trigger_seen = torch.zeros(B, n, dtype=torch.bool, device=dev)  # [B, n]

    def set_triggers(self, size) -> None:
        size = self._trigger_sizes(size)  # [B]
        self.n_markers = torch.round(size * N_MARKERS).long()

    def _reset_rows(self, rows: torch.Tensor) -> None:
        super()._reset_rows(rows)
        # Drawn for every row and whatever the size, after 3m's own draws: the trigger
        # never shifts a row's stream, so its battle is the same with and without it.
        spots = self._box_lo + self.rand(self.B, N_MARKERS, 2) * self._box_size  # [B, M, 2]
        on = torch.arange(N_MARKERS, device=self.device) < self.n_markers[:, None]  # [B, M]
        self.marker_pos = torch.where(rows[:, None, None], spots, self.marker_pos)
        self.marker_on = torch.where(rows[:, None], on, self.marker_on)

    def _observe(self):
        obs, state, avail = super()._observe()
        n = self.n_agents
        pos = self.units.pos[:, :n]  # [B, n, 2]
        alive = self.units.hp[:, :n] > 0  # [B, n]
        rel = (self.marker_pos[:, None] - pos[:, :, None]) / SIGHT_RANGE  # [B, n, M, 2]
        dist = rel.norm(dim=-1)  # [B, n, M]
        # strict, as a unit is seen only when strictly closer than the sight range
        seen = (dist < 1.0) & self.marker_on[:, None] & alive[..., None]  # [B, n, M]
        nearest = torch.where(seen, dist, float("inf")).argmin(-1)  # [B, n]
        visible = seen.any(-1)  # [B, n]
        offset = rel.gather(2, nearest[..., None, None].expand(-1, -1, 1, 2)).squeeze(2)
        offset = offset * visible[..., None]  # [B, n, 2]
        marker = torch.cat([visible[..., None].float(), offset], -1)  # [B, n, 3]
        self._trigger_seen = visible
        return torch.cat([obs, marker], -1), state, avail
