"""SMAC-style scenarios: sizes as SMAC's, rules on hand-built positions, scripted teams.

Long because one file keeps every map's checks together (sizes, combat rules, observation and
state against an independent re-derivation of SMAC's, scripted play): split, they would share
most of their hand-built positions through fixtures anyway."""

from __future__ import annotations

import math

import pytest
import torch

from arena.core import IllegalActionError, ScenarioError
from arena.scenarios import make
from arena.scenarios.smac import SmacLite
from arena.scenarios.smac_obs import N_NO_ATTACK
from arena.scenarios.smac_scripted import focus_fire_actions
from arena.scenarios.smac_units import STEP_SECONDS

STOP = 1
FAR = (30.0, 30.0)  # a corner where nobody is in sight of the fight


# Sizes from SMAC's get_env_info; 3s5z: obs 4 + 8·8 + 7·8 + 4 = 128,
# state 8·7 + 8·6 + 8·14 = 216.
SMAC_SIZES = {
    "3m": (30, 48, 9),
    "8m": (80, 168, 14),
    "2m_vs_1z": (16, 26, 7),
    "3s_vs_3z": (36, 54, 9),
    "2s3z": (80, 120, 11),
    "3s5z": (128, 216, 14),
}


def build(map_name: str, placed: dict[int, tuple[float, float]], batch: int = 1, **hp):
    """An env whose units listed in `placed` stand there, alive; every other unit stands in
    a far corner, dead unless listed in `keep`."""
    env = SmacLite(batch, map_name=map_name, debug=True)
    env.reset(0)
    s = env.units
    keep = hp.pop("keep", ())
    for u in range(env.n_units):
        if u in placed:
            s.pos[:, u] = torch.tensor(placed[u])
        else:
            s.pos[:, u] = torch.tensor(FAR)
            if u not in keep:
                s.hp[:, u] = 0.0
                s.shield[:, u] = 0.0
    return env


def scale(env: SmacLite) -> float:
    return env.max_reward / 20.0


@pytest.mark.parametrize("map_name", list(SMAC_SIZES))
def test_sizes_match_smac(map_name):
    env = make(map_name, 2)
    obs_dim, state_dim, n_actions = SMAC_SIZES[map_name]
    assert (env.spec.obs_dim, env.spec.state_dim, env.spec.n_actions) == SMAC_SIZES[map_name]
    ts = env.reset(0)
    n = env.spec.n_agents
    assert ts.obs.shape == (2, n, obs_dim)
    assert ts.state.shape == (2, state_dim)
    assert ts.avail.shape == (2, n, n_actions)
    assert env.spec.family == "smac"


def test_unknown_map_is_one_line_error():
    with pytest.raises(ScenarioError, match="unknown SMAC map"):
        SmacLite(1, map_name="nope")


def test_dead_agent_zero_obs_and_only_noop():
    env = SmacLite(2, map_name="2s3z", debug=True)
    env.reset(0)
    env.units.hp[0, 1] = 0.0
    ts = env.sync()
    assert torch.all(ts.obs[0, 1] == 0)
    assert ts.avail[0, 1].tolist() == [True] + [False] * (env.spec.n_actions - 1)
    assert ts.obs[1, 1].abs().sum() > 0  # the other episode is untouched
    alive = ts.avail[0, [0, 2, 3, 4]]
    assert not alive[:, 0].any() and alive[:, STOP].all()
    # a dead agent's slot in the other agents' ally block is zero, and its state row too
    blocks = env.layout.obs_blocks()
    ally = ts.obs[0, 0, blocks["ally"]].reshape(env.n_agents - 1, -1)
    assert torch.all(ally[0] == 0)  # agent 0's first other ally is agent 1
    state_ally = ts.state[0, env.layout.state_blocks()["ally"]].reshape(env.n_agents, -1)
    assert torch.all(state_ally[1] == 0)


def test_attack_available_only_for_alive_enemies_within_shoot_range():
    # agent 0 at (10, 16); enemy 3 at centre distance 5.9, enemy 4 at 6.1, enemy 5 at 2 but dead
    env = build("3m", {0: (10.0, 16.0), 3: (15.9, 16.0), 4: (10.0, 22.1), 5: (12.0, 16.0)})
    env.units.hp[0, 5] = 0.0
    ts = env.sync()
    attack = ts.avail[0, 0, N_NO_ATTACK:].tolist()
    assert attack == [True, False, False]
    lay = env.layout
    enemy = ts.obs[0, 0, lay.obs_blocks()["enemy"]].reshape(3, -1)
    att = lay.enemy.index("attackable")
    assert enemy[:, att].tolist() == [1.0, 0.0, 0.0]
    # enemy 4 is in sight (6.1 < 9) so it is observed, but not attackable
    assert enemy[1, lay.enemy.index("distance")] == pytest.approx(6.1 / 9, abs=1e-5)
    assert enemy[1, lay.enemy.index("rel_y")] == pytest.approx(6.1 / 9, abs=1e-5)
    assert torch.all(enemy[2] == 0)  # dead: zeros


def test_sight_range_is_strict_and_hides_units():
    env = build("3m", {0: (10.0, 16.0), 1: (10.0, 25.0), 3: (18.9, 16.0)})
    ts = env.sync()
    lay = env.layout
    ally = ts.obs[0, 0, lay.obs_blocks()["ally"]].reshape(2, -1)
    assert torch.all(ally[0] == 0)  # at exactly 9: not visible
    enemy = ts.obs[0, 0, lay.obs_blocks()["enemy"]].reshape(3, -1)
    assert enemy[0, lay.enemy.index("rel_x")] == pytest.approx(8.9 / 9, abs=1e-5)
    assert enemy[0, lay.enemy.index("health")] == 1.0


def test_move_availability_respects_map_edges():
    env = build("3m", {0: (0.5, 31.5), 3: FAR})
    ts = env.sync()
    north, south, east, west = ts.avail[0, 0, 2:6].tolist()
    assert (north, south, east, west) == (False, True, True, False)
    move = ts.obs[0, 0, env.layout.obs_blocks()["move"]]
    assert move.tolist() == [0.0, 1.0, 1.0, 0.0]


def test_marine_shot_reward_and_cooldown():
    env = build("3m", {0: (10.0, 16.0), 3: (15.0, 16.0)}, keep=(4,))
    env.sync()
    ts = env.step(torch.tensor([[N_NO_ATTACK + 0, 0, 0]]))
    s = env.units
    # the enemy marine shoots back in the same step (simultaneous resolution)
    assert s.hp[0, 3].item() == pytest.approx(39.0)
    assert s.hp[0, 0].item() == pytest.approx(39.0)
    assert ts.reward.item() == pytest.approx(6.0 / scale(env))
    assert env.max_reward == pytest.approx(10 * 3 + 200 + 3 * 45)
    # the weapon is cooling down: 0.61 s less the rest of the step
    assert s.cooldown[0, 0].item() == pytest.approx(0.61 - STEP_SECONDS)
    cd = ts.state[0, env.layout.state_blocks()["ally"]].reshape(3, -1)[0]
    assert cd[env.layout.ally_state.index("cooldown")].item() == pytest.approx(
        (0.61 - STEP_SECONDS) * 22.4 / 15
    )
    # The weapon becomes ready 0.61 s after the first shot, inside the second step, and the
    # rest of that step counts toward the next cooldown: shots land in steps 1, 2, 4, 6, 7...
    hits = []
    for _ in range(6):
        env.step(torch.tensor([[N_NO_ATTACK + 0, 0, 0]]))
        hits.append(round((45 - s.hp[0, 3].item()) / 6))
    assert hits == [2, 2, 3, 3, 4, 5]


def test_shield_absorbs_without_armor_then_armor_per_hit():
    # 3s_vs_3z: a stalker (13 per hit, zealot is light) shoots a zealot (50 shield, 1 armor).
    env = build("3s_vs_3z", {0: (10.0, 16.0), 3: (16.0, 16.0)}, keep=(4,))
    env.sync()
    env.step(torch.tensor([[N_NO_ATTACK + 0, 0, 0]]))
    s = env.units
    assert s.shield[0, 3].item() == pytest.approx(50 - 13)
    assert s.hp[0, 3].item() == pytest.approx(100.0)
    # shield at 5: 5 absorbed, 8 reach HP, minus 1 armor
    s.shield[0, 3] = 5.0
    s.cooldown[0, 0] = 0.0
    ts = env.sync()
    ts = env.step(torch.tensor([[N_NO_ATTACK + 0, 0, 0]]))
    assert s.shield[0, 3].item() == pytest.approx(0.0)
    assert s.hp[0, 3].item() == pytest.approx(100 - 7)
    assert ts.reward.item() == pytest.approx((5 + 7) / scale(env))  # health + shield lost


def test_zealot_strikes_twice_with_armor_on_each_hit():
    # 3s_vs_3z: the enemy zealot (8 x 2) stands next to stalker 0 (shield set to 5, armor 1).
    env = build("3s_vs_3z", {0: (10.0, 16.0), 3: (11.0, 16.0)}, keep=(4,))
    env.units.shield[0, 0] = 5.0
    env.sync()
    env.step(torch.tensor([[STOP, 0, 0]]))
    s = env.units
    # hit 1: 5 absorbed, 3 - 1 armor = 2 to HP; hit 2: 8 - 1 = 7 to HP
    assert s.shield[0, 0].item() == pytest.approx(0.0)
    assert s.hp[0, 0].item() == pytest.approx(80 - 2 - 7)
    assert s.target[0, 3].item() == 0  # the enemy remembers its target


def test_armored_bonus_and_minimum_damage():
    # 2s3z: stalker 0 (13 +5 vs armored) shoots enemy stalker 5 (armored, armor 1, no shield).
    env = build("2s3z", {0: (10.0, 16.0), 5: (10.0, 21.5)}, keep=(6,))
    env.units.shield[0, 5] = 0.0
    env.sync()
    env.step(torch.tensor([[N_NO_ATTACK + 0, 0, 0, 0, 0]]))
    assert env.units.hp[0, 5].item() == pytest.approx(80 - (13 + 5 - 1))


def test_kill_bonus_win_bonus_and_scaling():
    env = build("3m", {0: (10.0, 16.0), 3: (15.0, 16.0)})
    env.units.hp[0, 3] = 4.0
    env.sync()
    ts = env.step(torch.tensor([[N_NO_ATTACK + 0, 0, 0]]))
    assert ts.done.item() and ts.won.item()
    assert ts.info["battle_won"].item()
    assert ts.info["dead_enemies"].item() == 3
    assert ts.reward.item() == pytest.approx((4 + 10 + 200) / scale(env))


def test_simultaneous_kill_is_a_draw():
    env = build("3m", {0: (10.0, 16.0), 3: (15.0, 16.0)})
    env.units.hp[0, [0, 3]] = 3.0
    env.sync()
    ts = env.step(torch.tensor([[N_NO_ATTACK + 0, 0, 0]]))
    assert ts.done.item() and not ts.won.item()
    assert ts.info["dead_allies"].item() == 3 and ts.info["dead_enemies"].item() == 3
    assert ts.reward.item() == pytest.approx((3 + 10) / scale(env))  # no win bonus


def test_attack_out_of_weapon_range_walks_in_then_fires():
    env = build("3m", {0: (10.0, 16.0), 3: (16.0, 16.0)}, keep=(4,))
    env.sync()
    env.units.pos[0, 3] = torch.tensor([16.0, 16.0])
    s = env.units
    env.step(torch.tensor([[N_NO_ATTACK + 0, 0, 0]]))
    # centre distance 6 > 5 + 2 radii; the marine walks, the enemy (not in range) walks too
    assert s.hp[0, 3].item() == 45.0
    assert s.pos[0, 0, 0].item() > 10.0
    env.step(torch.tensor([[N_NO_ATTACK + 0, 0, 0]]))
    assert s.hp[0, 3].item() < 45.0


def test_enemy_attack_moves_toward_allies_start():
    env = build("3m", {0: (2.0, 2.0), 3: (23.0, 16.0)})
    env.sync()
    before = env.units.pos[0, 3].clone()
    env.step(torch.tensor([[STOP, 0, 0]]))
    after = env.units.pos[0, 3]
    step = 3.15 * STEP_SECONDS
    assert after[0].item() == pytest.approx(before[0].item() - step, abs=1e-4)
    assert after[1].item() == pytest.approx(16.0, abs=1e-5)


def test_shields_regenerate_after_ten_seconds():
    env = build("3s_vs_3z", {0: (10.0, 16.0), 3: (25.0, 3.0)}, keep=(4,))
    env.units.shield[0, 0] = 10.0
    env.units.since_hit[0, 0] = 9.8
    env.sync()
    env.step(torch.tensor([[STOP, 0, 0]]))
    assert env.units.shield[0, 0].item() == pytest.approx(10.0 + 2 * STEP_SECONDS)
    env.units.since_hit[0, 0] = 1.0
    env.step(torch.tensor([[STOP, 0, 0]]))
    assert env.units.shield[0, 0].item() == pytest.approx(10.0 + 2 * STEP_SECONDS)


def test_state_positions_relative_to_centre():
    env = build("3m", {0: (24.0, 8.0), 3: (8.0, 24.0)})
    ts = env.sync()
    lay = env.layout
    ally = ts.state[0, lay.state_blocks()["ally"]].reshape(3, -1)[0]
    assert ally[lay.ally_state.index("rel_x")].item() == pytest.approx(0.25)
    assert ally[lay.ally_state.index("rel_y")].item() == pytest.approx(-0.25)
    enemy = ts.state[0, lay.state_blocks()["enemy"]].reshape(3, -1)[0]
    assert enemy[lay.enemy_state.index("rel_x")].item() == pytest.approx(-0.25)
    env.step(torch.tensor([[4, 0, 0]]))
    last = env.sync().state[0, lay.state_blocks()["last_action"]].reshape(3, -1)
    assert last.argmax(-1).tolist() == [4, 0, 0] and last.sum().item() == 3


def play(env: SmacLite, policy: str, seed: int):
    ts = env.reset(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    ret = torch.zeros(env.B)
    while not ts.done.all():
        if policy == "focus":
            actions = focus_fire_actions(env, ts)
        else:
            probs = ts.avail.float().reshape(-1, env.spec.n_actions)
            actions = torch.multinomial(probs, 1, generator=gen).reshape(env.B, -1)
        ts = env.step(actions)
        ret += ts.reward
    return ts, ret


def test_focus_fire_beats_3m_and_perfect_wins_return_20():
    env = SmacLite(256, map_name="3m", debug=True)
    ts, ret = play(env, "focus", seed=0)
    assert ts.won.float().mean().item() >= 0.9
    assert torch.allclose(ret[ts.won], torch.full_like(ret[ts.won], 20.0), atol=1e-3)
    assert (ret[~ts.won] < 20.0).all()


def test_random_team_loses_3m():
    env = SmacLite(256, map_name="3m", debug=True)
    ts, ret = play(env, "random", seed=0)
    assert (~ts.won).float().mean().item() >= 0.9
    assert ret.max().item() < 20.0


def test_same_seed_same_trajectory_and_seeds_differ():
    runs = []
    for seed in (3, 3, 4):
        env = SmacLite(8, map_name="2s3z")
        ts, ret = play(env, "random", seed=seed)
        runs.append((env.units.pos.clone(), ret))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert not torch.equal(runs[0][0], runs[2][0])


def test_finished_episodes_are_frozen():
    env = build("3m", {0: (10.0, 16.0), 3: (15.0, 16.0)}, batch=2, keep=(4,))
    env.units.hp[0, 3:] = 0.0
    env.units.hp[0, 3] = 4.0  # episode 0 ends on the first shot
    env.sync()
    ts = env.step(torch.tensor([[N_NO_ATTACK, 0, 0], [N_NO_ATTACK, 0, 0]]))
    assert ts.done.tolist() == [True, False]
    pos, hp = env.units.pos[0].clone(), env.units.hp[0].clone()
    obs, state = ts.obs[0].clone(), ts.state[0].clone()
    ts = env.step(torch.tensor([[0, 0, 0], [STOP, 0, 0]]))
    assert ts.reward[0].item() == 0.0 and ts.done[0] and ts.won[0]
    assert torch.equal(env.units.pos[0], pos) and torch.equal(env.units.hp[0], hp)
    assert torch.equal(ts.obs[0], obs) and torch.equal(ts.state[0], state)


def test_auto_reset_starts_a_fresh_episode():
    env = build("3m", {0: (10.0, 16.0), 3: (15.0, 16.0)})
    env.auto_reset = True
    env.units.hp[0, 3] = 4.0
    env.sync()
    ts = env.step(torch.tensor([[N_NO_ATTACK, 0, 0]]))
    assert ts.done.item() and ts.won.item()
    assert torch.equal(env.units.hp[0], env.table.hp_max)
    assert not env.done.item()


def test_debug_illegal_action_raises():
    env = SmacLite(2, map_name="3m", debug=True)
    env.reset(0)
    with pytest.raises(IllegalActionError):
        env.step(torch.tensor([[N_NO_ATTACK, 1, 1], [1, 1, 1]]))  # enemies are out of range
    env.units.hp[1, 2] = 0.0
    env.sync()
    with pytest.raises(IllegalActionError):
        env.step(torch.tensor([[1, 1, 1], [1, 1, 1]]))  # a dead agent must no-op


def test_lenient_mode_replaces_illegal_actions():
    env = SmacLite(1, map_name="3m")
    env.reset(0)
    ts = env.step(torch.tensor([[N_NO_ATTACK, 1, 1]]))
    assert env.units.last_action[0, 0].item() == STOP  # lowest-index available action
    assert not ts.done.item()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_shapes_and_rules():
    env = SmacLite(64, map_name="2s3z", device="cuda", debug=True)
    ts = env.reset(0)
    assert ts.obs.device.type == "cuda"
    while not ts.done.all():
        ts = env.step(focus_fire_actions(env, ts))
    assert ts.won.dtype == torch.bool and ts.obs.shape == (64, 5, 80)


# -- SMAC's own code structure, re-derived in plain Python ------------------------------------
# Constants of SMAC's StarCraft2Env (default flags) and of the StarCraft II units.
SMAC_SIGHT, SMAC_SHOOT, SMAC_MOVE, SMAC_MAP = 9.0, 6.0, 2.0, 32.0
UNIT_MAX = {"stalker": (80.0, 80.0, 35.0), "zealot": (100.0, 50.0, 22.0)}  # hp, shield, max_cd
SC2_ID = {"zealot": 73, "stalker": 74}  # StarCraft II's ids; SMAC maps use their own for allies
MAP_ALLY_ID = {"stalker": 1970, "zealot": 1971}  # any ids with stalker first, as 2s3z's map


def smac_unit_type_id(kind: str, ally: bool) -> int:
    """SMAC's get_unit_type_id on a stalkers-and-zealots map."""
    if ally:
        return MAP_ALLY_ID[kind] - min(MAP_ALLY_ID.values())
    return SC2_ID[kind] - 73


class SmacByHand:
    """SMAC's get_avail_agent_actions, get_obs_agent and get_state on lists: one episode."""

    def __init__(self, env: SmacLite, b: int):
        s = env.units
        self.kinds = list(env.map.allies) + list(env.map.enemies)
        self.n, self.m = env.n_agents, env.n_enemies
        self.pos = s.pos[b].tolist()
        self.hp, self.shield = s.hp[b].tolist(), s.shield[b].tolist()
        self.cd = s.cooldown[b].tolist()
        self.last = s.last_action[b].tolist()
        self.bits = 2  # unit_type_bits of stalkers_and_zealots

    def avail(self, a: int) -> list[int]:
        avail = [0] * (6 + self.m)
        if self.hp[a] <= 0:
            avail[0] = 1
            return avail
        avail[1] = 1
        x, y = self.pos[a]
        for k, (dx, dy) in enumerate(((0, 1), (0, -1), (1, 0), (-1, 0))):
            px, py = x + dx * SMAC_MOVE / 2, y + dy * SMAC_MOVE / 2
            avail[2 + k] = int(0 <= px < SMAC_MAP and 0 <= py < SMAC_MAP)
        for e in range(self.m):
            ex, ey = self.pos[self.n + e]
            if self.hp[self.n + e] > 0 and math.hypot(ex - x, ey - y) <= SMAC_SHOOT:
                avail[6 + e] = 1
        return avail

    def unit_feats(self, u: int, ally: bool) -> list[float]:
        hp_max, sh_max, _ = UNIT_MAX[self.kinds[u]]
        bits = [0.0] * self.bits
        bits[smac_unit_type_id(self.kinds[u], ally)] = 1.0
        return [self.hp[u] / hp_max, self.shield[u] / sh_max] + bits

    def obs(self, a: int) -> list[float]:
        # SMAC: 4 + health + shield + unit_type_bits per unit, health + shield + bits own
        n_en = n_al = 4 + 2 + self.bits
        n_own = 2 + self.bits
        move = [0.0] * 4
        enemy = [[0.0] * n_en for _ in range(self.m)]
        ally = [[0.0] * n_al for _ in range(self.n - 1)]
        own = [0.0] * n_own
        if self.hp[a] > 0:
            x, y = self.pos[a]
            avail = self.avail(a)
            for k in range(4):
                move[k] = float(avail[k + 2])
            for e in range(self.m):
                ex, ey = self.pos[self.n + e]
                dist = math.hypot(ex - x, ey - y)
                if dist < SMAC_SIGHT and self.hp[self.n + e] > 0:
                    enemy[e][:4] = [avail[6 + e], dist / SMAC_SIGHT, (ex - x) / SMAC_SIGHT,
                                    (ey - y) / SMAC_SIGHT]
                    enemy[e][4:] = self.unit_feats(self.n + e, ally=False)
            others = [al for al in range(self.n) if al != a]
            for i, al in enumerate(others):
                ax, ay = self.pos[al]
                dist = math.hypot(ax - x, ay - y)
                if dist < SMAC_SIGHT and self.hp[al] > 0:
                    ally[i][:4] = [1.0, dist / SMAC_SIGHT, (ax - x) / SMAC_SIGHT,
                                   (ay - y) / SMAC_SIGHT]
                    ally[i][4:] = self.unit_feats(al, ally=True)
            own = self.unit_feats(a, ally=True)
        return move + sum(enemy, []) + sum(ally, []) + own

    def state(self) -> list[float]:
        ally = [[0.0] * (4 + 1 + self.bits) for _ in range(self.n)]
        enemy = [[0.0] * (3 + 1 + self.bits) for _ in range(self.m)]
        cx = cy = SMAC_MAP / 2
        for al in range(self.n):
            if self.hp[al] > 0:
                x, y = self.pos[al]
                hp_max, sh_max, max_cd = UNIT_MAX[self.kinds[al]]
                cooldown_loops = self.cd[al] * 22.4
                ally[al][0] = self.hp[al] / hp_max
                ally[al][1] = cooldown_loops / max_cd
                ally[al][2] = (x - cx) / SMAC_MAP
                ally[al][3] = (y - cy) / SMAC_MAP
                ally[al][4] = self.shield[al] / sh_max
                ally[al][smac_unit_type_id(self.kinds[al], True) - self.bits] = 1.0
        for e in range(self.m):
            u = self.n + e
            if self.hp[u] > 0:
                x, y = self.pos[u]
                hp_max, sh_max, _ = UNIT_MAX[self.kinds[u]]
                enemy[e][0] = self.hp[u] / hp_max
                enemy[e][1] = (x - cx) / SMAC_MAP
                enemy[e][2] = (y - cy) / SMAC_MAP
                enemy[e][3] = self.shield[u] / sh_max
                enemy[e][smac_unit_type_id(self.kinds[u], False) - self.bits] = 1.0
        last = [[0.0] * (6 + self.m) for _ in range(self.n)]
        for al, act in enumerate(self.last):
            if act >= 0:
                last[al][act] = 1.0
        return sum(ally, []) + sum(enemy, []) + sum(last, [])


def test_2s3z_obs_and_state_match_smacs_code_on_a_built_position():
    # agents 0-1 stalkers, 2-4 zealots; enemies 5-6 stalkers, 7-9 zealots
    placed = {0: (10.0, 16.0), 1: (12.0, 19.0), 2: (9.5, 14.0), 3: (1.0, 31.4), 4: (13.0, 15.0),
              5: (15.5, 16.0), 6: (17.0, 20.0), 7: (11.0, 13.0), 8: (25.0, 10.0),
              9: (14.0, 17.5)}
    env = build("2s3z", placed, keep=tuple(range(10)))
    s = env.units
    s.hp[0, 4] = 0.0  # a dead agent
    s.shield[0, 4] = 0.0
    s.hp[0, 9] = 0.0  # a dead enemy, in sight
    s.shield[0, 9] = 0.0
    s.hp[0, [0, 1, 5, 7]] = torch.tensor([55.0, 80.0, 12.5, 61.0])
    s.shield[0, [0, 2, 6, 7]] = torch.tensor([10.0, 0.0, 33.0, 5.0])
    s.cooldown[0, [0, 1]] = torch.tensor([0.5, 1.2])
    s.last_action[0] = torch.tensor([6, 1, 3, 1, 0])
    ts = env.sync()
    ref = SmacByHand(env, 0)
    assert ts.avail[0].int().tolist() == [ref.avail(a) for a in range(5)]
    for a in range(5):
        assert ts.obs[0, a].tolist() == pytest.approx(ref.obs(a), abs=1e-6), f"agent {a}"
    assert ts.state[0].tolist() == pytest.approx(ref.state(), abs=1e-6)
    # the enemy type bits read [zealot, stalker], the allies' [stalker, zealot]
    enemy = ts.obs[0, 0, env.layout.obs_blocks()["enemy"]].reshape(5, -1)
    assert enemy[0, -2:].tolist() == [0.0, 1.0] and enemy[2, -2:].tolist() == [1.0, 0.0]
    own = ts.obs[0, 0, env.layout.obs_blocks()["own"]]
    assert own[-2:].tolist() == [1.0, 0.0]


@pytest.mark.parametrize("map_name", ["3m", "8m", "2s3z", "3s5z"])
def test_agents_are_numbered_as_smac_sorts_them(map_name):
    """SMAC's init_units: allies sorted by (unit type, x, y); so must every reset be."""
    env = make(map_name, 64, auto_reset=True)
    rank = {kind: k for k, kind in enumerate(dict.fromkeys(env.map.allies))}
    ts = env.reset(seed=4)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        pos = env.units.pos[:, : env.n_agents].tolist()
        for row in pos:
            keys = [(rank[k], x, y) for k, (x, y) in zip(env.map.allies, row)]
            assert keys == sorted(keys)
        for _ in range(env.spec.episode_limit):  # play until every row has reset again
            probs = ts.avail.float().reshape(-1, env.spec.n_actions)
            ts = env.step(torch.multinomial(probs, 1, generator=gen).reshape(env.B, -1))
            if ts.done.all():
                break
        env.reset(seed=int(torch.randint(1000, (1,), generator=gen)))
