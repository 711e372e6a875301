"""The SMAX peer benchmark: the missing-extra error, pairing rows, and (with JAX) a short run."""

from __future__ import annotations

import builtins

import pytest

from arena import bench_peer
from arena.core import ScenarioError


def _row(batch, rate, impl, scenario="3m"):
    return {"scenario": scenario, "batch": batch, "device": "cpu", "impl": impl,
            "env_steps_per_s": rate, "seconds": 1.0}


@pytest.fixture
def no_jax(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.split(".")[0] in ("jax", "jaxmarl"):
            raise ModuleNotFoundError(f"No module named {name.split('.')[0]!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_missing_extra_is_one_clear_line(no_jax):
    with pytest.raises(ScenarioError) as err:
        bench_peer.bench_smax("3m", [1], steps=1, warmup=1)
    assert isinstance(err.value, bench_peer.PeerMissingError)
    msg = str(err.value)
    assert msg == "the smax peer needs the optional extra: pip install -e .[peers]"
    assert "\n" not in msg
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_unknown_map_is_a_scenario_error():
    # checked before anything is imported, so it needs no JAX either
    with pytest.raises(ScenarioError, match="no smax peer for 'predator_prey'"):
        bench_peer.bench_smax("predator_prey", [1])


def test_compare_pairs_rows_by_batch():
    ours = [_row(1, 100.0, "ours"), _row(8, 800.0, "ours"), _row(64, 6400.0, "ours")]
    peer = [_row(64, 3200.0, "smax"), _row(1, 400.0, "smax"), _row(4096, 1e6, "smax")]
    rows = bench_peer.compare(ours, peer)
    assert [r["batch"] for r in rows] == [1, 8, 64, 4096]
    by = {r["batch"]: r for r in rows}
    assert by[1]["ours_env_steps_per_s"] == 100.0 and by[1]["peer_env_steps_per_s"] == 400.0
    assert by[1]["ratio"] == pytest.approx(0.25)
    assert by[64]["ratio"] == pytest.approx(2.0)
    assert by[8]["peer_env_steps_per_s"] is None and by[8]["ratio"] is None
    assert by[4096]["ours_env_steps_per_s"] is None and by[4096]["ratio"] is None
    assert all(r["peer"] == "smax" and r["scenario"] == "3m" for r in rows)
    assert "ours_compiled_env_steps_per_s" not in by[1]


def test_compare_with_compiled_column():
    ours = [_row(1, 100.0, "ours")]
    peer = [_row(1, 50.0, "smax")]
    comp = [_row(1, 300.0, "ours_compiled")]
    (row,) = bench_peer.compare(ours, peer, comp)
    assert row["ours_compiled_env_steps_per_s"] == 300.0
    assert row["compiled_ratio"] == pytest.approx(6.0)
    assert row["ratio"] == pytest.approx(2.0)


def test_smax_rows_shaped_as_bench_env():
    pytest.importorskip("jax")
    pytest.importorskip("jaxmarl")
    rows = bench_peer.bench_smax("3m", [1, 4], steps=3, warmup=1)
    assert [r["batch"] for r in rows] == [1, 4]
    for r in rows:
        assert {"scenario", "batch", "device", "env_steps_per_s", "seconds"} <= set(r)
        assert r["impl"] == "smax" and r["scenario"] == "3m"
        assert r["env_steps_per_s"] > 0 and r["seconds"] > 0
    paired = bench_peer.compare([dict(r, impl="ours") for r in rows], rows)
    assert all(r["ratio"] == pytest.approx(1.0) for r in paired)


def test_smax_random_step_keeps_actions_legal_and_resets():
    jax = pytest.importorskip("jax")
    pytest.importorskip("jaxmarl")
    jax_, jnp, env = bench_peer._smax_env("3m")
    step = bench_peer._random_step(jax_, jnp, env)
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    _, state = jax.jit(jax.vmap(env.reset))(keys)
    out = (keys, state)
    ended = False
    for _ in range(env.max_steps + 1):  # long enough for every episode to end at least once
        out = step(out[0], out[1])
        ended |= bool(out[4]["__all__"].any())
    assert ended
    # after auto-reset the step counter never exceeds the episode limit
    assert int(out[1].state.step.max()) <= env.max_steps


@pytest.mark.parametrize("args, line", [
    (["--scenario", "3m"], "error: the smax peer needs the optional extra: pip install -e .[peers]"),
    (["--scenario", "pp7"], "error: no smax peer for 'pp7'; maps both have: 3m, 8m, 2s3z"),
])
def test_cli_peer_errors_are_one_line(no_jax, args, line):
    from click.testing import CliRunner

    from cli import main

    res = CliRunner().invoke(main, ["bench", "env", "--peer", "smax", "--batch", "1", *args])
    assert res.exit_code != 0 and res.output.strip().splitlines() == [line]
