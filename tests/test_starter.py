"""The starter league shipped inside the package: intact, and every defender beats random play."""

import numpy as np
import pytest

from arena.bench import random_legal_actions
from arena.scenarios import make
from policies.evaluate import default_players, fill
from store import League
from store.starter import copy_starter_league, starter_path


def _random_team_return(scenario: str, episodes: int = 64) -> float:
    import torch

    env = make(scenario, episodes)
    gen = torch.Generator().manual_seed(0)
    ts = env.reset(seed=0)
    total = torch.zeros(episodes)
    while not bool(ts.done.all()):
        ts = env.step(random_legal_actions(ts.avail, gen))
        total += ts.reward
    return float(total.mean())


def test_every_policy_verifies_its_checksum(tmp_path):
    assert starter_path().stat().st_size < 16 * 2**20  # a few MB, shipped in the package
    path = copy_starter_league(tmp_path / "league.h5")  # opening takes a lock file beside it
    with League(path) as lg:
        infos = lg.list(all_versions=True)
        assert len(infos) >= 20
        for info in infos:
            lg.get(info.ref)  # raises CorruptLeague when the sha256 does not match
        kinds = {(i.scenario, i.name.split(".")[0]) for i in infos}
    for scenario in ("3m", "pp7"):
        for name in ("qmix", "qmix_fgsm", "qmix_reg", "qmix_atla", "qmix_paad", "vdn",
                     "atla", "pa_ad"):
            assert (scenario, name) in kinds, f"{name}.{scenario} missing"
        assert (scenario, f"psro_{scenario}_def") in kinds
    assert {("any", "random"), ("any", "fgsm"), ("any", "pgd")} <= kinds
    # the backdoor surface on stag10: the expert, two backdoors, the defences and their cells
    assert {("stag10", "qmix"), ("stag10", "marnet"), ("stag10", "trojdrl"), ("any", "finetune"),
            ("any", "as_delivered"), ("any", "prune"), ("stag10", "finetune_vs_marnet")} <= kinds
    # the agent surface on 3m: two adversarial teammates and the retrained team
    assert {("3m", "takeover_ppo"), ("3m", "takeover_dev"), ("3m", "qmix_tk"),
            ("any", "takeover_random")} <= kinds


@pytest.mark.parametrize("scenario", ["3m", "pp7", "stag10"])
def test_each_defender_beats_a_random_team_clean(tmp_path, scenario):
    league = copy_starter_league(tmp_path / "league.h5")
    with League(league) as lg:
        # the defenders a table shows by default, the PSRO mixture included; PSRO's
        # intermediate best responses are oracle outputs trained against attack mixtures, not
        # curated teams (the mixture weighs them)
        defenders, _ = default_players(lg, scenario)

    def opener(mode):
        return League(league, mode=mode)

    table = fill(opener, scenario, defenders, ["none"], episodes=16, seed=123).table
    random_return = _random_team_return(scenario)
    clean = table.mean[:, 0]
    assert np.all(clean > random_return + 1.0), dict(zip(defenders, clean))


def test_init_starter_never_overwrites(tmp_path):
    from store import StoreError

    target = tmp_path / "league.h5"
    target.write_bytes(b"mine")
    with pytest.raises(StoreError, match="never overwrites"):
        copy_starter_league(target)
    assert target.read_bytes() == b"mine"
