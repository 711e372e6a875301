"""League store: round trips, versions, retire/purge, listing, matches, payoff tables, runs."""

import json

import h5py
import numpy as np
import pytest

from store import (SCHEMA_VERSION, League, MatchRecord, PayoffTable, PolicyInfo, PolicyRecord, StoreError,
                   parse_ref)


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "league.h5"
    League.create(p)
    return p


def weights(seed=0, n=3):
    rng = np.random.default_rng(seed)
    return {"agent.fc1.weight": rng.standard_normal((n, 4)).astype(np.float32),
            "agent.fc1.bias": rng.standard_normal(n).astype(np.float32), "steps": np.arange(5, dtype=np.int64)}


def add(lg, name="qmix", role="defender", kind="qmix", scenario="3m", seed=0, **kw):
    return lg.add_policy(name, role, kind, scenario, kw.get("config", {"lr": 5e-4}),
                         kw.get("weights", weights(seed)), kw.get("provenance", {"seed": seed}))


def match(d, a, returns, wins=None, scenario="3m", seed=0):
    e = len(returns)
    return MatchRecord(d, a, scenario, np.asarray(returns, float),
                       np.zeros(e, int) if wins is None else wins, np.full(e, 10), np.full(e, 0.1),
                       seed, "cpu", "test")


@pytest.mark.parametrize("checkpoint", [False, True])
def test_round_trip_bit_exact(path, checkpoint):
    w = weights(1)
    w["half"] = np.array([1.5, -2.25], dtype=np.float16)
    w["double"] = np.array([0.1, 1e-3])
    cfg = {"lr": 5e-4, "layers": [64, 64], "name": "é"}
    prov = {"parent": None, "steps": 10, "seed": 3}
    lg = League(path, "a")
    ref = add(lg, weights=w, config=cfg, provenance=prov)
    if checkpoint:
        lg.close()
        lg = League(path, "r")
    rec = lg.get(ref)
    assert isinstance(rec, PolicyRecord) and isinstance(rec.info(), PolicyInfo)
    assert (rec.ref, rec.name, rec.version, rec.role, rec.kind, rec.scenario) == ("qmix@v1", "qmix", 1, "defender", "qmix", "3m")
    assert rec.config == cfg and rec.provenance == prov
    assert rec.weights["agent.fc1.weight"].tobytes() == w["agent.fc1.weight"].tobytes()
    assert rec.weights["steps"].dtype == np.int64 and (rec.weights["steps"] == np.arange(5)).all()
    assert rec.weights["half"].dtype == np.float32 and (rec.weights["half"] == [1.5, -2.25]).all()
    assert rec.weights["double"].dtype == np.float32 and (rec.weights["double"] == np.float32([0.1, 1e-3])).all()
    assert rec.n_params == sum(a.size for a in w.values()) and rec.versions == 1 and not rec.retired
    assert lg.info(ref).sha256 == rec.sha256 and len(rec.sha256) == 64
    lg.close()


def test_plain_h5py_layout_after_close(path):
    with League(path, "a") as lg:
        ref = add(lg)
        lg.add_match(match(ref, "none", [1.0, 2.0]))
        run = lg.create_run({"solver": "lp"}, run_id="r1")
        lg.append_iteration(run, {"it": 0})
    assert sorted(p.name for p in path.parent.iterdir()) == ["league.h5", "league.h5.lock", "league.h5.lock.w"]
    with h5py.File(path, "r") as f:
        assert f.attrs["schema_version"] == SCHEMA_VERSION and isinstance(f.attrs["arena_version"], str)
        g = f["policies/qmix"]
        assert (g.attrs["role"], g.attrs["kind"], g.attrs["scenario"], g.attrs["latest"]) == ("defender", "qmix", "3m", 1)
        v = g["v1"]
        assert json.loads(v.attrs["config"]) == {"lr": 5e-4} and not v.attrs["retired"]
        assert v["weights/agent.fc1.weight"].dtype == np.float32
        assert list(f["matches/3m/ep_returns"][:]) == [1.0, 2.0]
        assert f["matches/3m/defender"].asstr()[0] == "qmix@v1"
        assert json.loads(f["runs/r1/iterations"].asstr()[0]) == {"it": 0}


def test_versioning_keeps_old_versions(path):
    with League(path, "a") as lg:
        assert add(lg, seed=1) == "qmix@v1"
        assert add(lg, seed=2) == "qmix@v2"
        assert lg.resolve("qmix") == "qmix@v2" and lg.resolve("qmix@v1") == "qmix@v1"
        assert (lg.get("qmix@v1").weights["agent.fc1.bias"] == weights(1)["agent.fc1.bias"]).all()
        assert (lg.get("qmix").weights["agent.fc1.bias"] == weights(2)["agent.fc1.bias"]).all()
        assert lg.info("qmix@v1").versions == 2
        with pytest.raises(StoreError, match="has role 'defender'"):
            add(lg, role="attacker")
        with pytest.raises(StoreError, match="qmix has versions v1, v2|qmix has version"):
            lg.get("qmix@v7")
        add(lg, seed=3)
        with pytest.raises(StoreError, match=r"unknown version v7: qmix has versions v1\.\.v3"):
            lg.get("qmix@v7")
        with pytest.raises(StoreError, match="unknown policy 'qmx'; did you mean 'qmix'"):
            lg.resolve("qmx")


def test_retire_and_purge(path):
    with League(path, "a") as lg:
        for s in range(3):
            add(lg, seed=s)
        atk = add(lg, "fgsm", "attacker", "fgsm", "any", weights={})
        lg.add_match(match("qmix@v3", atk, [1.0]))
        lg.add_match(match("qmix@v1", atk, [2.0]))
        lg.retire("qmix@v3")
        assert [p.ref for p in lg.list()] == ["fgsm@v1", "qmix@v2"]
        assert lg.resolve("qmix") == "qmix@v2" and lg.get("qmix@v3").retired
        assert {p.ref for p in lg.list(include_retired=True, all_versions=True)} == \
            {"fgsm@v1", "qmix@v1", "qmix@v2", "qmix@v3"}
        lg.purge("qmix@v1")
        with pytest.raises(StoreError, match="unknown version v1"):
            lg.get("qmix@v1")
        assert [m.defender for m in lg.matches()] == ["qmix@v3"]
        assert add(lg, seed=9) == "qmix@v4"  # numbers are never reused
        lg.retire("fgsm")
        assert [p.ref for p in lg.list(role="attacker")] == []
    with League(path, "a") as lg:  # after the checkpoint (a purge repacks the file)
        assert [p.ref for p in lg.list(all_versions=True, include_retired=True)] == \
            ["fgsm@v1", "qmix@v2", "qmix@v3", "qmix@v4"]
        assert [m.defender for m in lg.matches()] == ["qmix@v3"]
        lg.purge("qmix")
        assert [p.name for p in lg.list(include_retired=True)] == ["fgsm"] and lg.matches() == []
        assert add(lg) == "qmix@v5"  # a purged name keeps counting: versions never repeat


def test_list_filters(path):
    with League(path, "a") as lg:
        add(lg, "qmix_3m")
        add(lg, "qmix_3m", seed=1)
        add(lg, "vdn_3m", kind="vdn")
        add(lg, "qmix_pp7", scenario="pp7")
        add(lg, "fgsm", "attacker", "fgsm", "any", weights={})
        assert [p.ref for p in lg.list()] == ["fgsm@v1", "qmix_3m@v2", "qmix_pp7@v1", "vdn_3m@v1"]
        assert [p.ref for p in lg.list(role="defender", scenario="3m")] == ["qmix_3m@v2", "vdn_3m@v1"]
        assert [p.ref for p in lg.list(kind="qmix", all_versions=True)] == ["qmix_3m@v1", "qmix_3m@v2", "qmix_pp7@v1"]
        assert [p.ref for p in lg.list(role="attacker")] == ["fgsm@v1"]
        assert lg.list(scenario="nowhere") == []


def test_payoff_matches_numpy(path):
    rng = np.random.default_rng(0)
    with League(path, "a") as lg:
        d = [add(lg, f"d{i}", seed=i) for i in range(2)]
        a = [add(lg, f"a{i}", "attacker", "pgd", "3m", weights={}) for i in range(2)] + ["none"]
        data = {}
        for k in range(12):
            i, j = k % 2, k % 3
            r = rng.standard_normal(int(rng.integers(1, 6)))
            wins = rng.integers(0, 2, len(r)).astype(bool)
            lg.add_match(match(d[i], a[j], r, wins=wins, seed=k))
            data.setdefault((i, j), []).append((r, wins))
            if k == 6:
                lg.checkpoint()  # half the records in the main file, half in the journal
        t = lg.payoff("3m", ["d0", "d1@v1", "d0"], ["a0", "a1", "none"])
    assert isinstance(t, PayoffTable) and t.defenders == ["d0@v1", "d1@v1", "d0@v1"]
    for (i, j), rs in data.items():
        r = np.concatenate([x for x, _ in rs])
        w = np.concatenate([x for _, x in rs])
        for row in [i] + ([2] if i == 0 else []):
            assert t.count[row, j] == len(r)
            assert np.isclose(t.mean[row, j], r.mean())
            assert np.isclose(t.win_rate[row, j], w.mean())
            if len(r) > 1:
                assert np.isclose(t.std[row, j], r.std(ddof=1))
                assert np.isclose(t.ci95[row, j], 1.96 * r.std(ddof=1) / np.sqrt(len(r)))
    assert np.isnan(t.mean[t.count == 0]).all()
    dct = t.to_dict()
    json.dumps(dct, allow_nan=False)
    assert dct["count"] == t.count.tolist()


def test_payoff_empty_cells_and_matches_filters(path):
    with League(path, "a") as lg:
        d1, d2 = add(lg), add(lg, seed=1)
        lg.add_match(match(d1, "none", [1.0, 3.0], seed=1))
        lg.add_match(match(d2, "none", [2.0], seed=2))
        t = lg.payoff("3m", ["qmix@v1", "qmix"], ["none"])
        assert t.count.tolist() == [[2], [1]] and t.mean.tolist() == [[2.0], [2.0]]
        assert np.isnan(t.std[1, 0]) and np.isnan(t.ci95[1, 0])
        assert [m.seed for m in lg.matches(defender="qmix")] == [1, 2]
        assert [m.seed for m in lg.matches(defender="qmix@v2", attacker="none")] == [2]
        assert lg.matches(scenario="pp7") == []
        m = lg.matches()[0]
        assert (m.episodes, m.sum, m.sumsq) == (2, 4.0, 10.0)
        with pytest.raises(StoreError, match="qmix@v2 is a defender, not an attacker"):
            lg.payoff("3m", ["qmix"], ["qmix"])
        with pytest.raises(StoreError, match="scenario '3m', not 'pp7'"):
            lg.add_match(match(d1, "none", [1.0], scenario="pp7"))


def test_runs(path):
    with League(path, "a") as lg:
        rid = lg.create_run({"solver": "lp", "iters": 3})
        lg.create_run({}, run_id="second")
        for i in range(3):
            lg.append_iteration(rid, {"it": i, "value": 0.5 * i, "added": [f"br@v{i + 1}"]})
        with pytest.raises(StoreError, match="already exists"):
            lg.create_run({}, run_id="second")
        with pytest.raises(StoreError, match="unknown run"):
            lg.append_iteration("nope", {})
        lg.checkpoint()
        lg.append_iteration(rid, {"it": 3})
        r = lg.get_run(rid)
    assert r.config == {"solver": "lp", "iters": 3} and [x["it"] for x in r.iterations] == [0, 1, 2, 3]
    with League(path) as lg:
        assert [x.run_id for x in lg.runs()] == [rid, "second"]
        assert lg.get_run(rid).iterations[1] == {"it": 1, "value": 0.5, "added": ["br@v2"]}


def test_transaction_groups_and_rolls_back(path):
    with League(path, "a") as lg:
        with lg.transaction():
            a = add(lg)
            b = add(lg, seed=1)
            assert lg.resolve("qmix") == b  # reads inside see the pending writes
        assert len(list((path.parent / "league.h5.journal").glob("*.jrn"))) == 1
        with pytest.raises(RuntimeError):
            with lg.transaction():
                add(lg, seed=2)
                raise RuntimeError("boom")
        assert lg.resolve("qmix") == b and a == "qmix@v1"
    with League(path) as lg:
        assert [p.ref for p in lg.list(all_versions=True)] == ["qmix@v1", "qmix@v2"]


def test_journal_view_equals_checkpointed_file(path):
    """The in-memory replay of the journal and the checkpoint of the same journal agree."""
    rng = np.random.default_rng(5)
    lg = League(path, "a", checkpoint_bytes=1 << 40, checkpoint_entries=10**9)
    for i in range(40):
        u = rng.random()
        names = [p.ref for p in lg.list(include_retired=True, all_versions=True)]
        if u < 0.4 or not names:
            add(lg, f"p{rng.integers(4)}", seed=i)
        elif u < 0.7:
            lg.add_match(match(names[rng.integers(len(names))], "none", rng.standard_normal(3), seed=i))
        elif u < 0.8:
            lg.retire(names[rng.integers(len(names))])
        elif u < 0.9:
            lg.purge(names[rng.integers(len(names))])
        else:
            lg.checkpoint()

    def snapshot(league):
        pols = [(p.ref, p.retired, p.sha256, p.versions) for p in league.list(include_retired=True, all_versions=True)]
        ms = [(m.defender, m.seed, m.returns.tolist()) for m in league.matches()]
        defs = [r for r, *_ in pols]
        t = league.payoff("3m", defs, ["none"]).count.tolist() if defs else []
        return pols, ms, t, [league.get(r).sha256 for r in defs]

    before = snapshot(lg)
    lg.close()
    with League(path) as after:
        assert snapshot(after) == before


def test_validation_errors(path):
    with League(path, "a") as lg:
        cases = [
            (dict(weights={"w": np.array([1.0, np.nan])}), "NaN or Inf"),
            (dict(weights={"w": np.array([1e300])}), "NaN or Inf"),
            (dict(weights={"w": np.array([True])}), "dtype bool"),
            (dict(weights={"w": np.array(["a"])}), "dtype <U1"),
            (dict(weights={"w": np.array([object()])}), "dtype object"),
            (dict(weights={1: np.zeros(2)}), "weight names must be strings"),
            (dict(weights={"a/b": np.zeros(2)}), "invalid weight name"),
            (dict(config={"x": np.float32(1)}), "config is not JSON-serialisable"),
            (dict(config={"x": float("nan")}), "config is not JSON-serialisable"),
            (dict(provenance={"x": {1, 2}}), "provenance is not JSON-serialisable"),
            (dict(role="referee"), "invalid role 'referee'"),
            (dict(name="a@v1"), "invalid policy name"),
            (dict(name="a/b"), "invalid policy name"),
            (dict(name=".."), "invalid policy name"),
            (dict(name="none"), "reserved"),
        ]
        for kw, msg in cases:
            with pytest.raises(StoreError, match=msg) as e:
                add(lg, **kw)
            assert "\n" not in str(e.value)
        assert lg.list() == []
        with pytest.raises(StoreError, match="unknown policy"):
            lg.add_match(match("ghost", "none", [1.0]))
        ref = add(lg)
        with pytest.raises(StoreError, match="wins must be 0/1"):
            lg.add_match(match(ref, "none", [1.0], wins=[2]))
        with pytest.raises(StoreError, match="lengths has|has 2 entries"):
            lg.add_match(MatchRecord(ref, "none", "3m", [1.0], [1, 0], [1], [0.0], 0, "cpu", "x"))
    with League(path) as lg:
        with pytest.raises(StoreError, match="read-only"):
            add(lg)


@pytest.mark.parametrize("ref,expected", [("qmix", ("qmix", None)), ("qmix@v12", ("qmix", 12)),
                                          ("a.b-c_d@v1", ("a.b-c_d", 1))])
def test_parse_ref(ref, expected):
    assert parse_ref(ref) == expected


@pytest.mark.parametrize("ref", ["", "qmix@", "qmix@v", "qmix@3", "qmix@v0", "@v1", "a/b", "a@v1@v2", None, 3])
def test_parse_ref_malformed(ref):
    with pytest.raises(StoreError, match="malformed ref"):
        parse_ref(ref)


def test_create_refuses_overwrite(path):
    with League(path, "a") as lg:
        add(lg)
    with pytest.raises(StoreError, match="already exists"):
        League.create(path)
    League.create(path, force=True)
    with League(path) as lg:
        assert lg.list() == [] and lg.schema_version == SCHEMA_VERSION
