"""The examples of docs/any-model.md work as written: its Python files are saved as they
are, and its commands run (shortened, on generated MNIST-like data)."""

import json
import re
import runpy
import shlex
from pathlib import Path

import pytest

from tests.helpers import CONFIGS, FAST, make_mnist, metrics, run

PAGE = Path(__file__).resolve().parents[1] / "docs" / "any-model.md"


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", PAGE.read_text(), re.S)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with the page's Python files, as a user would have it, as the working folder."""
    for code in blocks("python"):
        name = code.splitlines()[0].removeprefix("# ").strip()
        (tmp_path / name).write_text(code)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_the_pages_commands_train_and_are_judged(project: Path) -> None:
    data = make_mnist(project / "data", train=900, test=60)
    commands = [c.strip() for c in blocks("bash")]
    assert len(commands) == 3 and all(c.startswith("python main.py fit") for c in commands)
    for command in commands:
        args = shlex.split(command.replace("../shared/data/mnist", str(data)))[2:]
        args[args.index("configs/mnist.yaml")] = str(CONFIGS / "mnist.yaml")
        run_dir = run(*args, *FAST, "--trainer.logger", "false", root=project / "runs")
        result = metrics(run_dir)
        assert result["status"] == "completed" and result["checked"], command
        assert "findings" in result and "not_checked" in result


def test_the_pages_script_runs_with_default_callbacks(project: Path, capsys) -> None:
    data = make_mnist(project / "data", train=7200, test=60)  # 100 batches, as the script takes
    script = project / "train.py"
    script.write_text(script.read_text().replace("../shared/data/mnist", str(data)))
    runpy.run_path(str(script), run_name="__main__")
    log_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    result = json.loads((log_dir / "metrics.json").read_text())
    assert result["status"] == "completed" and "dead_units" in result["checked"]
    assert (log_dir / "preflight.json").exists() and (log_dir / "activations.png").exists()
