import numpy as np
import pytest
import torch

from arena.core import IllegalActionError, ScenarioError
from arena.scenarios import make
from arena.scenarios.traffic_junction import BRAKE, GAS, TrafficJunction
from tests.reference.tj_reference import TrafficJunctionReference


def random_legal(avail: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    # Mostly gas, so that cars drive through the junction and sometimes crash.
    w = avail.float() * torch.tensor([3.0, 1.0])
    return torch.multinomial(w.view(-1, 2), 1, generator=gen).view(avail.shape[:2])


def all_gas(env: TrafficJunction) -> torch.Tensor:
    """Gas for every car, brake for the empty slots."""
    return torch.where(env.alive, GAS, BRAKE)


class Feed:
    """Replaces `_draw_arrivals` with recorded draws, to hand the same ones to the reference."""

    def __init__(self, env: TrafficJunction, seed: int):
        self.rng = np.random.default_rng(seed)
        self.draws: list[np.ndarray] = []
        self.env = env
        env._draw_arrivals = self

    def __call__(self) -> torch.Tensor:
        u = self.rng.random((self.env.B, 2))
        self.draws.append(u)
        return torch.tensor(u, dtype=torch.float32, device=self.env.device)


def assert_row(ts, b: int, ref: TrafficJunctionReference) -> None:
    obs, state, avail = ref.observe()
    torch.testing.assert_close(ts.obs[b].cpu(), torch.tensor(obs), rtol=0, atol=1e-6)
    torch.testing.assert_close(ts.state[b].cpu(), torch.tensor(state), rtol=0, atol=1e-6)
    assert ts.avail[b].cpu().tolist() == avail


@pytest.mark.parametrize("add_rate", [0.1, 0.3])
def test_matches_reference_row_by_row(add_rate):
    B, steps = 6, 300  # 15 episodes per row
    env = make("tj_easy", B, auto_reset=True, debug=True, add_rate=add_rate)
    feed = Feed(env, seed=1)
    gen = torch.Generator().manual_seed(2)
    ts = env.reset(seed=0)
    refs = [TrafficJunctionReference(env.cfg) for _ in range(B)]
    for b, ref in enumerate(refs):
        ref.reset(feed.draws[0][b])
        assert_row(ts, b, ref)
    crashes = wins = 0
    for _ in range(steps):
        actions = random_legal(ts.avail, gen)
        n_draws = len(feed.draws)
        ts = env.step(actions)
        new = feed.draws[n_draws:]
        for b, ref in enumerate(refs):
            reward, done, won = ref.step(actions[b].tolist(), new[0][b])
            assert float(ts.reward[b]) == pytest.approx(reward, abs=1e-4)
            assert bool(ts.done[b]) == done and bool(ts.won[b]) == won
            if done:
                crashes += not won
                wins += won
                ref.reset(new[1][b])
            assert_row(ts, b, ref)
    # Both outcomes occurred, so the comparison covered collisions and clean episodes.
    assert crashes > 0 and wins > 0


def test_spec_and_shapes():
    env = make("tj_easy", 3)
    s = env.spec
    assert (s.n_agents, s.n_actions, s.episode_limit, s.messages) == (5, 2, 20, True)
    ts = env.reset(seed=0)
    assert ts.obs.shape == (3, 5, s.obs_dim) and ts.obs.dtype == torch.float32
    assert ts.state.shape == (3, s.state_dim)
    assert ts.avail.shape == (3, 5, 2) and ts.avail.dtype == torch.bool
    ts = env.step(torch.ones(3, 5, dtype=torch.long))
    assert ts.reward.shape == ts.done.shape == ts.won.shape == (3,)


def test_inactive_slots_see_zeros_and_may_only_brake():
    env = make("tj_easy", 64)
    ts = env.reset(seed=3)
    inactive = ~env.alive
    assert inactive.any() and env.alive.any()
    assert (ts.obs[inactive] == 0).all()
    assert (ts.avail[inactive] == torch.tensor([False, True])).all()
    assert ts.avail[env.alive].all()


def test_seeding_is_deterministic():
    def run(seed):
        env = make("tj_easy", 16, add_rate=0.5)
        gen = torch.Generator().manual_seed(0)
        ts = env.reset(seed=seed)
        out = [ts.state]
        while not ts.done.all():
            ts = env.step(random_legal(ts.avail, gen))
            out += [ts.state, ts.reward]
        return torch.cat([o.flatten() for o in out])

    assert torch.equal(run(5), run(5))
    assert not torch.equal(run(5), run(6))


def test_done_rows_are_frozen():
    env = make("tj_easy", 8, add_rate=0.8)
    gen = torch.Generator().manual_seed(0)
    ts = env.reset(seed=0)
    for _ in range(3):
        ts = env.step(random_legal(ts.avail, gen))
    env.done[:4] = True  # freeze half the rows mid-episode
    before = ts
    for _ in range(5):
        ts = env.step(random_legal(ts.avail, gen))
        assert torch.equal(ts.obs[:4], before.obs[:4])
        assert torch.equal(ts.state[:4], before.state[:4])
        assert (ts.reward[:4] == 0).all()
    assert not torch.equal(ts.state[4:], before.state[4:])


def test_episode_ends_at_limit_and_auto_reset_restarts():
    env = make("tj_easy", 4, auto_reset=True)
    ts = env.reset(seed=0)
    for t in range(20):
        ts = env.step(all_gas(env))
        assert bool(ts.done.all()) == (t == 19)
    assert (env.t == 0).all() and not env.done.any()
    assert (env.tau[env.alive] == 0).all()  # only fresh arrivals are in the system

    env = make("tj_easy", 4)
    ts = env.reset(seed=0)
    for _ in range(20):
        ts = env.step(torch.full((4, 5), BRAKE))
    assert ts.done.all() and not ts.info["truncated"].any()
    frozen = env.step(torch.full((4, 5), BRAKE))
    assert torch.equal(frozen.state, ts.state) and (frozen.reward == 0).all()


def test_gas_for_an_empty_slot_raises_in_debug_mode():
    env = make("tj_easy", 2, debug=True, add_rate=0.0)
    env.reset(seed=0)
    with pytest.raises(IllegalActionError):
        env.step(torch.full((2, 5), GAS))
    loose = make("tj_easy", 2, add_rate=0.0)
    loose.reset(seed=0)
    ts = loose.step(torch.full((2, 5), GAS))  # replaced by brake
    assert (ts.reward == 0).all()


def test_collision_costs_ten_per_car_and_loses():
    env = make("tj_easy", 2, add_rate=0.0)
    env.reset(seed=0)
    # Row 0: car 0 on route 0 one cell before the junction, car 1 on route 1 likewise.
    env.alive[:, :2] = True
    env.route[:, :2] = torch.tensor([0, 1])
    env.prog[:, :2] = 2
    env.tau[:, :2] = 2
    env._last = env._timestep(torch.zeros(2), {})
    actions = torch.tensor([[GAS, GAS, BRAKE, BRAKE, BRAKE], [GAS, BRAKE, BRAKE, BRAKE, BRAKE]])
    ts = env.step(actions)
    # Both cars age to τ = 3: −0.03 each; row 0 crashes in the junction: −10 per car.
    assert ts.reward.tolist() == pytest.approx([-20.06, -0.06])
    assert ts.info["collisions"].tolist() == [2.0, 0.0]
    assert ts.state[0, 3 * 7 + 3] == 2.0
    assert ts.obs[0, 0, 4] == 1.0  # one other car in its own cell
    for _ in range(19):
        ts = env.step(torch.full((2, 5), BRAKE))
    assert ts.done.all()
    assert ts.won.tolist() == [False, True]


def test_unknown_option_is_a_clear_error():
    with pytest.raises(ScenarioError, match="unknown tj_easy option"):
        make("tj_easy", 1, add_rat=0.3)
    with pytest.raises(ScenarioError, match="add_rate"):
        make("tj_easy", 1, add_rate=1.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_with_the_same_draws():
    outs = []
    for device in ("cpu", "cuda"):
        env = make("tj_easy", 32, device=device, auto_reset=True, add_rate=0.5)
        Feed(env, seed=4)
        gen = torch.Generator().manual_seed(1)
        ts = env.reset(seed=0)
        trace = []
        for _ in range(45):
            ts = env.step(random_legal(ts.avail.cpu(), gen).to(device))
            trace += [ts.obs.cpu(), ts.state.cpu(), ts.reward.cpu()]
        outs.append(trace)
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b)


def test_partial_reset_touches_only_its_rows():
    env = make("tj_easy", 6, add_rate=1.0)
    ts = env.reset(seed=0)
    for _ in range(3):
        ts = env.step(all_gas(env))
    rows = torch.tensor([True, False, True, False, False, True])
    env._reset_rows(rows)
    obs, state, _ = env._observe()
    assert torch.equal(obs[~rows], ts.obs[~rows])
    assert torch.equal(state[~rows], ts.state[~rows])
    # add_rate 1: a fresh episode holds exactly the two cars that entered at the road starts.
    assert (env.alive[rows].sum(-1) == 2).all() and (env.tau[rows] == 0).all()
