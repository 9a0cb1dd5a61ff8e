"""Studies: the runner on a tiny grid through the real ``main.py``, re-runs that skip what is
done, a failing combination that does not stop the study, the report, and the shipped
study files checked against W&B's sweep format."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from scipy.stats import ttest_ind

from main import main as netscope
from netscope.core.history import History
from netscope.figures.study import Group, activation_figure
from netscope.studies.cli import main as studies
from netscope.studies.expand import combo_key, expand, format_args, labels, setting
from netscope.studies.index import Entry, StudyIndex
from netscope.studies.notes import behind
from netscope.studies.report import write_report
from netscope.studies.rows import Row
from netscope.studies.runner import folder_lock
from netscope.studies.spec import load_study, sweep_config_problems
from netscope.studies.stats import Comparison, Setting

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "configs" / "studies").glob("*.yaml"))

#: XOR (Lab01's 2-4-1 sigmoid net) with the gradient and activation diagnostics on, so
#: every report figure has data; a few steps per epoch.
XOR_WITH_DIAGNOSTICS = {
    "seed_everything": 0,
    "trainer": {"max_epochs": 2, "log_every_n_steps": 5, "logger": False, "enable_model_summary": False,
                "callbacks": [{"class_path": "netscope.callbacks.GradientNorms"},
                              {"class_path": "netscope.callbacks.ActivationStatistics"}]},
    "model": {"class_path": "netscope.models.MLP", "init_args": {"hidden_sizes": [4], "activation": "sigmoid"}},
    "data": {"class_path": "netscope.datamodules.XORDataModule",
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


@pytest.mark.slow  # nine main.py processes: about 90 s on 2 cores
def test_runner_runs_grid_in_parallel_survives_failure_skips_done_and_reports(tmp_path, monkeypatch, capsys):
    study = tiny_study(tmp_path)
    out = tmp_path / "study"
    monkeypatch.chdir(REPO)  # the command names main.py relative to the project, as for wandb agent
    studies(["run", str(study), "--out", str(out), "--jobs", "2", "--threads-per-run", "1"])
    printed = capsys.readouterr().out
    assert "2 at a time, 1 thread each" in printed
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
        assert entries[label]["run_dir"].endswith(label)  # each run found its own directory
    assert "--model.init_args.init_scale=0.5" in entries["zeros-init_scale0.5"]["command"]
    assert index["sessions"][0]["jobs"] == 2 and index["sessions"][0]["threads"] == 1

    with (out / "runs.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [row["run"] for row in rows] == ["zeros-init_scale0.5", "zeros-init_scale-1.0",
                                            "normal-init_scale0.5", "normal-init_scale-1.0"]
    assert [row["status"] for row in rows] == ["completed", "completed", "completed", "failed"]
    assert all(row["val/acc"] and row["init_checksum"] for row in rows[:3])
    # The zero init ignores its scale: both zero runs start from the same weights.
    assert rows[0]["init_checksum"] == rows[1]["init_checksum"] != rows[2]["init_checksum"]
    with (out / "report.csv").open() as file:
        settings = list(csv.DictReader(file))
    assert [row["seeds"] for row in settings] == ["1", "1", "1", "0"]  # one seed each; one failed
    report = (out / "report.md").read_text()
    assert "Same initial weights (`init_checksum`): zeros-init_scale0.5, zeros-init_scale-1.0" in report
    assert "No `init_checksum` (the run ended before training started): normal-init_scale-1.0" in report
    assert "every run" not in report.lower().split("## notes")[1]  # no claim about runs it cannot see
    assert "Not tested: a test needs at least 2 seeds per setting" in report
    for figure in ("curves.png", "grad_norms.png", "activations.png"):
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({figure})" in report

    # --jobs 2 gave the same per-run metrics as --jobs 1 at the same thread count.
    sequential = tmp_path / "sequential"
    studies(["run", str(study), "--out", str(sequential), "--jobs", "1", "--threads-per-run", "1",
             "--count", "2"])
    finished = json.loads((sequential / "index.json").read_text())["entries"]
    assert len(finished) == 2
    for key, entry in finished.items():
        together, alone = (json.loads((folder / e["run_dir"] / "metrics.json").read_text())
                           for folder, e in ((out, index["entries"][key]), (sequential, entry)))
        for summary in (together, alone):
            summary.pop("wall_time_s")
        assert together == alone

    # Again: the three finished runs are skipped, the failed one is tried again.
    run_dirs = set((out / "runs").iterdir())
    studies(["run", str(study), "--out", str(out)])
    assert "3 done earlier" in capsys.readouterr().out
    new = set((out / "runs").iterdir()) - run_dirs
    assert [path.name.endswith("normal-init_scale-1.0") for path in new] == [True]

    # Another (failing) override into the same folder is refused: nothing is replaced.
    records = {path: path.read_bytes() for path in [out / "index.json", *(out / "logs").iterdir()]}
    with pytest.raises(SystemExit) as exit_:
        studies(["run", str(study), "--out", str(out), "--", "--optimizer.init_args.lr=-1"])
    assert exit_.value.code == 1
    error = capsys.readouterr().err
    assert "another command line" in error and "--optimizer.init_args.lr=-1" in error and "--out" in error
    assert {path: path.read_bytes() for path in records} == records
    assert set((out / "runs").iterdir()) == run_dirs | new

    (out / "report.md").unlink()
    studies(["report", str(out)])
    assert (out / "report.md").read_text().count("\n| zeros-init_scale0.5 |") == 2  # settings and runs


@pytest.mark.slow  # a real study killed and resumed: about 50 s on 2 cores
def test_study_killed_mid_run_resumes_with_the_same_command(tmp_path):
    config = tmp_path / "xor_long.yaml"
    config.write_text(yaml.safe_dump(XOR_WITH_DIAGNOSTICS | {
        "trainer": XOR_WITH_DIAGNOSTICS["trainer"] | {"max_epochs": 40}}))
    study = tmp_path / "one.yaml"
    study.write_text(yaml.safe_dump({
        "name": "one", "program": "main.py", "method": "grid",
        "command": ["${env}", "${interpreter}", "${program}", "fit", "--config", str(config), "${args}"],
        "parameters": {"seed_everything": {"values": [3]}}}))
    out = tmp_path / "study"
    command = [sys.executable, "-m", "studies", "run", str(study), "--out", str(out), "--threads-per-run", "1"]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    runner = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600  # generous: a loaded machine starts processes slowly
    while not list((out / "runs").glob("*/config.yaml")) and runner.poll() is None:
        assert time.monotonic() < deadline, "the study's run did not start"
        time.sleep(0.2)  # the run has started fitting
    assert runner.poll() is None, "the study ended before it could be killed"
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    killed = list((out / "runs").iterdir())
    assert len(killed) == 1
    assert json.loads((out / "index.json").read_text())["entries"].popitem()[1]["status"] == "running"
    time.sleep(1)  # the run dies with its runner: none is left writing into the folder
    assert not processes_naming(out)

    subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)
    (entry,) = json.loads((out / "index.json").read_text())["entries"].values()
    assert entry["status"] == "completed" and (out / entry["run_dir"]) not in killed
    assert json.loads((out / entry["run_dir"] / "metrics.json").read_text())["status"] == "completed"
    assert "\n| one | one | 3 | completed |" in (out / "report.md").read_text()


def processes_naming(path: Path) -> list[str]:
    """The ids of the processes whose command line names ``path``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if str(path).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:  # ended meanwhile
            pass
    return found


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
    assert len(combos) >= 3 * len({combo_key(setting(combo)) for combo in combos})  # >= 3 seeds each
    # Every setting's arguments, exactly as wandb agent would pass them, parse in main.py
    # (the seeds of one setting differ only in an integer: one of them is enough).
    for combo in {combo_key(setting(combo)): combo for combo in combos}.values():
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


def generated_study(folder: Path) -> Path:
    """A study folder as the runner leaves it, with made-up results: settings A and B
    within each other's noise, C far below both (and the doctor's findings on two of its
    seeds), D failed before training; runs of one seed share their initial weights."""
    finals = {"A": [0.90, 0.91, 0.92], "B": [0.905, 0.93, 0.88], "C": [0.50, 0.51, 0.49]}
    finding = {"code": "vanishing_gradients", "severity": "warning", "where": "features.0.weight",
               "step": 40, "evidence": {"ratio": 1e-4}, "message": "the first layer's gradient is 1e-4 of the last's"}
    index = StudyIndex(study="generated", metric={"name": "val/acc", "goal": "maximize"})
    config = {"trainer": {"log_every_n_steps": 50, "callbacks": [{"class_path": "netscope.callbacks.GradientNorms"}]}}
    for name, values in [*finals.items(), ("D", [None])]:
        for seed, value in enumerate(values):
            combo = {"model.init_args.activation": name, "seed_everything": seed}
            entry = Entry(key=json.dumps(combo), label=f"{name}-seed{seed}", values=combo,
                          status="completed" if value else "failed", elapsed_s=1.0,
                          reason=None if value else "ValueError: a made-up failure")
            if value:
                run_dir = folder / "runs" / f"20260101-000000-{entry.label}"
                (run_dir / "csv").mkdir(parents=True)
                (run_dir / "config.yaml").write_text(yaml.safe_dump(config | {"seed_everything": seed}))
                summary = {"status": "completed", "global_step": 10, "val/acc": value,
                           "init_checksum": f"checksum{seed}"}
                if name == "B":
                    summary["findings"] = []
                if name == "C":
                    summary["findings"] = [finding] if seed < 2 else []
                (run_dir / "metrics.json").write_text(json.dumps(summary))
                losses = "".join(f"0,{step},{1.1 - value - 0.01 * step},\n" for step in range(0, 10, 3))
                (run_dir / "csv" / "metrics.csv").write_text(
                    f"epoch,step,train/loss_step,val/acc\n{losses}0,9,,{value}\n")
                entry.run_dir = str(run_dir.relative_to(folder))
            index.entries[entry.key] = entry
            index.order.append(entry.key)
    index.save(folder)
    return folder


def test_report_aggregates_seeds_and_claims_only_what_the_test_supports(tmp_path):
    folder = generated_study(tmp_path / "generated")
    write_report(folder)
    with (folder / "report.csv").open() as file:
        settings = {row["setting"]: row for row in csv.DictReader(file)}
    assert list(settings) == ["A", "B", "C", "D"]
    a = settings["A"]
    assert (a["seeds"], a["runs"]) == ("3", "3")
    assert float(a["val/acc_mean"]) == pytest.approx(0.91)
    assert float(a["val/acc_std"]) == pytest.approx(0.01)  # sample standard deviation
    assert (float(a["val/acc_min"]), float(a["val/acc_max"])) == (0.90, 0.92)
    assert settings["D"]["seeds"] == "0" and settings["D"]["val/acc_mean"] == ""
    assert settings["C"]["findings"] == "vanishing_gradients 2/3"
    assert settings["B"]["findings"] == "" and settings["A"]["findings"] == ""
    with (folder / "runs.csv").open() as file:
        assert len(list(csv.DictReader(file))) == 10

    report = (folder / "report.md").read_text()
    p_ab = ttest_ind([0.90, 0.91, 0.92], [0.905, 0.93, 0.88], equal_var=False).pvalue
    p_ac = ttest_ind([0.90, 0.91, 0.92], [0.50, 0.51, 0.49], equal_var=False).pvalue
    assert "A and B are indistinguishable at 3 seeds (difference +0.50 points; Welch's t = " in report
    assert f"p = {p_ab:.3g}" in report
    assert "- **A** beats **C**: val/acc higher by 41.00 points (Welch's t = " in report
    assert f"p = {p_ac:.3g}, Holm-adjusted p = {min(1, 3 * p_ac):.3g}" in report  # the smallest of 3
    assert "**B** beats **C**" in report
    assert "beats **B**" not in report and "beats **A**" not in report  # no ranking inside the noise
    assert "the test cannot tell it from B at 3 seeds" in report
    # Per setting, how many seeds raised each finding; a missing key is "did not run", not healthy.
    assert "| C | C | 3/3 | 50.00 ± 1.00 | 49.00 – 51.00 |" in report
    assert "vanishing_gradients 2/3 |" in report and "| doctor did not run |" in report
    assert ("- `C-seed0` its setting lags A (p = " in report
            and "Doctor: vanishing_gradients at features.0.weight (step 40): the first layer's" in report)
    assert "- `C-seed2` its setting lags A" in report and "Doctor: the doctor raised no finding" in report
    assert "- `D-seed0` failed: ValueError: a made-up failure" in report
    assert "Same initial weights (`init_checksum`): A-seed0, B-seed0, C-seed0." in report
    assert "No `init_checksum` (the run ended before training started): D-seed0." in report
    # The real cause of missing gradient norms: 10 steps, fewer than log_every_n_steps.
    assert "took at most 10 optimizer steps, fewer than `trainer.log_every_n_steps` (50)" in report
    assert (folder / "curves.png").exists() and not (folder / "grad_norms.png").exists()


def test_every_setting_gets_its_panel_even_without_data():
    with_data, without = History(), History()
    with_data.record(5, {"act_dead/features.1": 0.3, "act_dead/features.3": 0.1})
    without.record(5, {"act_mean/features.1": 0.2})  # leaky_relu: neither dead nor saturated
    figure = activation_figure([Group("relu", [with_data, with_data]), Group("leaky_relu", [without])], "t")
    panels = [axis for axis in figure.axes if axis.get_visible()]
    assert [axis.get_title() for axis in panels] == ["relu (2 seeds)", "leaky_relu (1 seed)"]
    assert "no saturated or dead fraction" in panels[1].texts[0].get_text()
    assert "min to max over seeds" in figure.legends[0].get_title().get_text()


def test_report_notes_say_stalled_only_for_a_plateau_the_run_never_left():
    def row(label: str, setting: str, evidence: dict) -> Row:
        finding = {"code": "not_learning", "severity": "error", "where": "model", "step": 249,
                   "evidence": evidence, "message": "the training loss is still 2.301"}
        return Row(label=label, values={}, setting=setting, seed=0, status="completed",
                   reason=None, summary={"findings": [finding]}, run_dir=None, elapsed_s=None)
    rows = [row("xavier-seed0", "xavier", {"cleared_by_step": 4215}), row("default-seed0", "default", {})]
    order = [Setting("kaiming", {}, []), Setting("xavier", {}, []), Setting("default", {}, [])]
    lags = [Comparison("kaiming", s, "val/acc", 0.5, 9.0, 1e-4, 1e-3, "better") for s in ("xavier", "default")]
    notes = dict(zip(("xavier", "default"), behind(rows, order, lags)))
    assert "lags kaiming" in notes["xavier"] and "stalled" not in notes["xavier"]
    assert "stalled" in notes["default"]


def test_report_notes_explain_a_run_with_an_error_finding_even_without_a_test():
    # One seed per setting (nothing tested): the zero-init run is still explained.
    symmetry = {"code": "symmetry", "severity": "error", "where": "features.0", "step": 0,
                "evidence": {}, "message": "every unit of features.0 has the same weights"}
    rows = [Row(label="zeros-seed0", values={}, setting="zeros", seed=0, status="completed",
                reason=None, summary={"findings": [symmetry]}, run_dir=None, elapsed_s=None),
            Row(label="kaiming-seed0", values={}, setting="kaiming", seed=0, status="completed",
                reason=None, summary={"findings": []}, run_dir=None, elapsed_s=None)]
    notes = behind(rows, [Setting("kaiming", {}, []), Setting("zeros", {}, [])], [])
    assert len(notes) == 1 and notes[0].startswith("- `zeros-seed0`")
    assert "symmetry at features.0" in notes[0]


def test_a_second_runner_into_a_busy_study_folder_is_refused(tmp_path, capsys):
    # Two terminals, one folder: both would run the same combinations and rewrite index.json.
    study, out = tiny_study(tmp_path), tmp_path / "study"
    with folder_lock(out):  # what a working runner holds
        with pytest.raises(SystemExit) as exit_info:
            studies(["run", str(study), "--out", str(out)])
    assert exit_info.value.code != 0
    error = capsys.readouterr().err
    assert "another `python -m studies run`" in error and f"pid {os.getpid()}" in error
    assert "Traceback" not in error and not (out / "index.json").exists()
    with folder_lock(out):  # released: the next runner gets it
        pass


def test_findings_column_marks_info_only_findings():
    def row(label: str, severity: str) -> Row:
        finding = {"code": "lr_too_high", "severity": severity, "where": "model", "step": 0,
                   "evidence": {}, "message": "the first step of RMSprop changes the weights by 19%"}
        return Row(label=label, values={}, setting="rmsprop", seed=0, status="completed",
                   reason=None, summary={"findings": [finding]}, run_dir=None, elapsed_s=None)
    assert Setting("rmsprop", {}, [row("a", "info"), row("b", "info")]).finding_counts() == {
        "lr_too_high (info)": 2}
    assert Setting("rmsprop", {}, [row("a", "info"), row("b", "warning")]).finding_counts() == {
        "lr_too_high (info)": 1, "lr_too_high": 1}
