"""The group itself: global options before or after the command, option errors in one line."""

import json

from click.testing import CliRunner

from cli import main


def run(args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def one_line(res, code=2):
    assert res.exit_code == code, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert "Usage:" not in res.output and "Traceback" not in res.output
    return lines[0]


def test_global_options_after_the_command(tmp_path):
    lg = tmp_path / "after.h5"
    assert run(["init", "--league", str(lg)]).exit_code == 0
    assert lg.exists()
    res = run(["ls", "--league", str(lg), "--json", "--quiet", "--lock-timeout", "5",
               "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == []
    # before the command, as before
    assert run(["--league", str(lg), "ls", "--json"]).exit_code == 0


def test_option_after_wins_over_option_before(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    assert run(["--league", str(a), "init", "--league", str(b)]).exit_code == 0
    assert b.exists() and not a.exists()


def test_global_options_on_nested_commands(tmp_path):
    res = run(["train", "defender", "--help"])
    assert res.exit_code == 0 and "--league" in res.output and "--device" in res.output


def test_option_errors_are_one_line():
    line = one_line(run(["ls", "--bogus"]))
    assert "--bogus" in line
    line = one_line(run(["matrix", "--episodes", "many"]))
    assert "episodes" in line
    one_line(run(["nosuchcommand"]))
    one_line(run(["--device", "tpu", "ls"]))
    one_line(run(["play", "qmix"]))  # missing arguments


def test_device_takes_a_gpu_index():
    """`--device cuda:N` names one GPU of several; without a GPU it is one line, as `cuda` is."""
    import torch

    assert "cuda:N" in one_line(run(["--device", "cuda:x", "ls"]))
    args = ["--device", "cuda:1", "bench", "env", "--scenario", "pp7", "--batch", "1",
            "--steps", "1"]
    if not torch.cuda.is_available():
        assert "no CUDA device" in one_line(run(args))


def test_help_still_exits_zero():
    res = run(["ls", "--help"])
    assert res.exit_code == 0 and "Usage:" in res.output


def test_a_closed_pipe_is_not_an_error(tmp_path):
    import subprocess
    import sys

    league = tmp_path / "l.h5"
    assert run(["--league", str(league), "init", "--starter"]).exit_code == 0
    # `arena show … | head`: the reader is gone before the command writes a line
    proc = subprocess.Popen([sys.executable, "-m", "cli", "--league", str(league), "show",
                             "qmix"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert err == "", err
