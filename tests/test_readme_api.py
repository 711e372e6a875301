"""The README's Python API example runs as written, on a copy of the starter league."""

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_python_api_runs(tmp_path, monkeypatch, capsys):
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    from store.starter import starter_path

    shutil.copy(starter_path(), tmp_path / "league.h5")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert any("qmix.3m@v1" in line for line in out)
    from store import League

    with League(tmp_path / "league.h5") as lg:
        table = lg.payoff("3m", ["qmix.3m@v1", "qmix_fgsm.3m@v1"], ["none", "fgsm@v1", "pgd@v1"])
    assert (table.count >= 16).all()
