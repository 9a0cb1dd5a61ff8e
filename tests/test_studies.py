"""Studies: the runner on a tiny grid through the real ``main.py``, re-runs that skip what is
done, a failing combination that does not stop the study, the report, and the shipped
study files checked against W&B's sweep format."""

import csv
import json
from pathlib import Path

import pytest
import yaml

from main import main as netscope
from studies.cli import main as studies
from studies.expand import expand, format_args, labels
from studies.spec import load_study, sweep_config_problems

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "configs" / "studies").glob("*.yaml"))

#: XOR (Lab01's 2-4-1 sigmoid net) with the gradient and activation diagnostics on, so
#: every report figure has data; a few steps per epoch.
XOR_WITH_DIAGNOSTICS = {
    "seed_everything": 0,
    "trainer": {"max_epochs": 2, "log_every_n_steps": 5, "logger": False, "enable_model_summary": False,
                "callbacks": [{"class_path": "callbacks.GradientNorms"},
                              {"class_path": "callbacks.ActivationStatistics"}]},
    "model": {"class_path": "models.MLP", "init_args": {"hidden_sizes": [4], "activation": "sigmoid"}},
    "data": {"class_path": "datamodules.XORDataModule",
             "init_args": {"task": "binary", "batch_size": 4, "repeats": 5}},
    "optimizer": {"class_path": "torch.optim.Adam", "init_args": {"lr": 0.05}},
}


def tiny_study(folder: Path) -> Path:
    """A 2x2 grid whose (normal, -1.0) combination is invalid: a normal init with std -1."""
    config = folder / "xor_diagnostics.yaml"
    config.write_text(yaml.safe_dump(XOR_WITH_DIAGNOSTICS))
    study = folder / "tiny.yaml"
    study.write_text(yaml.safe_dump({
        "name": "tiny",
        "program": "main.py",
        "method": "grid",
        "command": ["${env}", "${interpreter}", "${program}", "fit", "--config", str(config), "${args}"],
        "parameters": {"model.init_args.init": {"values": ["zeros", "normal"]},
                       "model.init_args.init_scale": {"values": [0.5, -1.0]}},
    }))
    return study


def test_runner_runs_grid_survives_failure_skips_done_and_reports(tmp_path, monkeypatch, capsys):
    study = tiny_study(tmp_path)
    out = tmp_path / "study"
    monkeypatch.chdir(REPO)  # the command names main.py relative to the project, as for wandb agent
    studies(["run", str(study), "--out", str(out)])
    printed = capsys.readouterr().out
    for number in range(1, 5):
        assert f"[{number}/4]" in printed

    index = json.loads((out / "index.json").read_text())
    entries = {entry["label"]: entry for entry in index["entries"].values()}
    assert {label: entry["status"] for label, entry in entries.items()} == {
        "zeros-init_scale0.5": "completed", "zeros-init_scale-1.0": "completed",
        "normal-init_scale0.5": "completed", "normal-init_scale-1.0": "failed"}
    assert "std" in entries["normal-init_scale-1.0"]["reason"]  # the cause, from the run's log
    for label in ("zeros-init_scale0.5", "normal-init_scale0.5"):
        summary = json.loads((out / entries[label]["run_dir"] / "metrics.json").read_text())
        assert summary["status"] == "completed"
    assert "--model.init_args.init_scale=0.5" in entries["zeros-init_scale0.5"]["command"]

    with (out / "report.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [row["run"] for row in rows] == ["zeros-init_scale0.5", "zeros-init_scale-1.0",
                                            "normal-init_scale0.5", "normal-init_scale-1.0"]
    assert [row["status"] for row in rows] == ["completed", "completed", "completed", "failed"]
    assert all(row["val/acc"] and row["init_checksum"] for row in rows[:3])
    # The zero init ignores its scale: both zero runs start from the same weights.
    assert rows[0]["init_checksum"] == rows[1]["init_checksum"] != rows[2]["init_checksum"]
    report = (out / "report.md").read_text()
    assert report.count("\n| ") == 1 + 4  # header and one row per run
    assert "Same initial weights (`init_checksum`): zeros-init_scale0.5, zeros-init_scale-1.0" in report
    for figure in ("curves.png", "grad_norms.png", "activations.png"):
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({figure})" in report

    # Again: the three finished runs are skipped, the failed one is tried again.
    run_dirs = set((out / "runs").iterdir())
    studies(["run", str(study), "--out", str(out)])
    assert "3 done earlier" in capsys.readouterr().out
    new = set((out / "runs").iterdir()) - run_dirs
    assert [path.name.endswith("normal-init_scale-1.0") for path in new] == [True]

    (out / "report.md").unlink()
    studies(["report", str(out)])
    assert (out / "report.md").read_text().count("\n| ") == 1 + 4


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_study_is_a_valid_sweep_whose_runs_parse(path, capsys):
    config = yaml.safe_load(path.read_text())
    assert sweep_config_problems(config) == []
    assert config["method"] in ("grid", "random") and config["name"] == path.stem
    study = load_study(path)
    command = study.command
    assert command[:5] == ["${env}", "${interpreter}", "${program}", "fit", "--config"]
    assert study.program == "main.py" and (REPO / command[5]).exists()
    combos = expand(study)
    assert len(set(labels(combos, study.name))) == len(combos) > 1
    # Every run's arguments, exactly as wandb agent would pass them, parse in main.py.
    for combo in combos:
        with pytest.raises(SystemExit) as exit_:
            netscope(["fit", "--config", str(REPO / command[5]), *format_args(combo), "--print_config"])
        assert exit_.value.code in (0, None)
    capsys.readouterr()


def test_local_args_are_what_wandb_agent_passes():
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    for path in SHIPPED:
        for combo in expand(load_study(path)):
            agent = create_sweep_command_args({"args": {k: {"value": v} for k, v in combo.items()}})
            assert format_args(combo) == agent["args"]
            assert format_args(combo, equals=False) == agent["args_no_equals"]


@pytest.mark.parametrize("change, problem", [
    ({"method": "exhaustive"}, "`method`"),
    ({"command": ["${env}", "python", "main.py", "fit"]}, "${args}"),
    ({"parameters": {"model.init_args.activation": ["relu", "tanh"]}}, "must be a mapping"),
    ({"parameters": {"optimizer.lr": {"values": []}}}, "non-empty list"),
    ({"parameters": {"optimizer.lr": {"distribution": "uniform", "min": 0.1}}}, "`max` is required"),
    ({"trainer": {"max_epochs": 1}}, "unknown top-level key `trainer`"),
])
def test_invalid_sweep_configs_are_named(change, problem):
    config = {"program": "main.py", "method": "grid",
              "command": ["${env}", "${interpreter}", "${program}", "fit", "${args}"],
              "parameters": {"model.init_args.activation": {"values": ["relu", "tanh"]}}} | change
    assert any(problem in text for text in sweep_config_problems(config))


def test_random_study_draws_the_same_runs_each_time(tmp_path):
    path = tmp_path / "random.yaml"
    path.write_text(yaml.safe_dump({
        "program": "main.py", "method": "random", "run_cap": 3,
        "command": ["${env}", "${interpreter}", "${program}", "fit", "${args}"],
        "parameters": {"optimizer.init_args.lr": {"distribution": "log_uniform_values",
                                                  "min": 1e-4, "max": 1e-1},
                       "model.init_args.activation": {"values": ["relu", "tanh"]}}}))
    study = load_study(path)
    first, second = expand(study), expand(study)
    assert first == second and len(first) == 3
    assert all(1e-4 <= combo["optimizer.init_args.lr"] <= 1e-1 for combo in first)
    assert len(expand(study, count=2)) == 2


def test_bad_study_file_is_one_clear_error(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("method: grid\nparameters: {}\n")
    with pytest.raises(SystemExit) as exit_:
        studies(["run", str(path)])
    assert exit_.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith("studies: error:") and "`parameters`" in error and "Traceback" not in error
