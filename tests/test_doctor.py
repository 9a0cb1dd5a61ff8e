"""The doctor: its rules on logged series, its pre-flight check through ``check``, its
findings in ``metrics.json``, and that a run with it trains exactly as without it."""

import json
import math
import subprocess

import pytest
import torch
import yaml

from netscope.callbacks.defaults import DEFAULTS
from netscope.callbacks.doctor import Doctor
from netscope.core.history import History
from netscope.doctor.__main__ import diagnose, main as doctor_main
from netscope.doctor.findings import Finding, console_block, merge
from netscope.doctor.measures import dead_fraction, zero_fraction
from netscope.doctor.preflight import Preflight, judge
from netscope.doctor.rules import Context, evaluate, replay, settle
from netscope.doctor.thresholds import Thresholds
from tests.helpers import CONFIGS, SHARED_DATA, metrics, requires_shared, run

XOR = ["--config", str(CONFIGS / "xor.yaml"), "--test_after_fit", "false"]
CONTEXT = Context(task="classification", num_classes=10,
                  activations={"features.1": "ReLU", "features.3": "ReLU"},
                  weights=["features.0.weight", "features.2.weight", "head.weight"])


def codes(findings: list[Finding]) -> dict[str, str]:
    return {f.code: f.where for f in findings}


def test_dead_units_are_units_zero_for_every_sample_not_zero_outputs():
    output = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 2.0]])  # unit 0 never fires
    assert float(dead_fraction(output)) == pytest.approx(1 / 3)
    assert float(zero_fraction(output)) == pytest.approx(4 / 6)
    conv = torch.zeros(2, 4, 3, 3)
    conv[1, 2, 0, 0] = 1.0  # channel 2 fires once, at one position of one sample
    assert float(dead_fraction(conv)) == 0.75


def test_rules_name_the_layer_and_the_first_step_they_held():
    history = History()
    for step, dead in zip(range(9, 300, 30), [0.1, 0.2, 0.6, 0.7, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9]):
        history.record(step, {"act_dead/features.3": dead, "act_dead/features.1": 0.02,
                              "train/loss": 2.30})
    findings = replay(history, CONTEXT, Thresholds())
    found = {f.code: f for f in findings}
    assert found["dead_units"].where == "features.3"
    assert found["dead_units"].step == 129  # third logged value at or above 0.5 in a row
    # at the chance loss (ln 10) for 200 steps: the first logged step 200 steps after the first
    assert found["not_learning"].step == 219 and found["not_learning"].severity == "error"
    assert "features.1" not in {f.where for f in findings}
    # A threshold is a setting: at 0.95 nothing here is dead.
    assert "dead_units" not in codes(replay(history, CONTEXT, Thresholds(dead_fraction=0.95)))


def test_learning_rate_rules_follow_the_update_ratio():
    def history_with(ratio: float, losses: list[float]) -> History:
        history = History()
        for i, loss in enumerate(losses):
            history.record(i * 10, {f"update_ratio/{w}": ratio for w in CONTEXT.weights}
                           | {"train/loss": loss})
        return history
    high = evaluate(history_with(0.5, [2.3, 1.0, 3.0, 2.0]), CONTEXT, Thresholds(), 30)
    assert codes(high)["lr_too_high"] == "model"
    low = evaluate(history_with(1e-7, [1.50, 1.50, 1.49, 1.49]), CONTEXT, Thresholds(), 30)
    assert codes(low)["lr_too_low"] == "model"
    healthy = evaluate(history_with(1e-3, [2.3, 1.0, 0.6, 0.4]), CONTEXT, Thresholds(), 30)
    assert healthy == []


def test_small_steps_from_a_vanishing_gradient_do_not_blame_the_learning_rate():
    # A deep sigmoid net's short fit: tiny steps everywhere, and the first layer's gradient
    # 1e-5 of the top's. The cause is the vanished gradient; lr_too_low said "try 10-100x
    # larger" beside vanishing_gradients before.
    history = History()
    for i, loss in enumerate([2.30, 2.30, 2.30, 2.30]):
        history.record(i * 10, {f"update_ratio/{w}": 1e-7 for w in CONTEXT.weights}
                       | {f"weight_norm/{w}": 1.0 for w in CONTEXT.weights}
                       | {"grad_norm/features.0.weight": 1e-8, "grad_norm/features.2.weight": 1e-4,
                          "grad_norm/head.weight": 1e-3, "train/loss": loss})
    found = codes(evaluate(history, CONTEXT, Thresholds(), 30))
    assert found.get("vanishing_gradients") == "features.0.weight" and "lr_too_low" not in found


def test_a_signal_that_vanished_at_init_keeps_lr_too_low_away_during_training():
    # the depth study's Xavier MLP: the pre-flight finds the vanishing signal; at step 149
    # the layers' relative gradients are within 1e-3 of each other, all steps are tiny, and
    # lr_too_low said "try 10-100x larger" beside the pre-flight's finding
    from dataclasses import replace
    history = History()
    for i in range(4):
        history.record(i * 10, {f"update_ratio/{w}": 8e-8 for w in CONTEXT.weights}
                       | {"train/loss": 2.30})
    assert "lr_too_low" in codes(evaluate(history, CONTEXT, Thresholds(), 30))
    vanished = replace(CONTEXT, signal_vanishes=True)
    assert "lr_too_low" not in codes(evaluate(history, vanished, Thresholds(), 30))


def test_one_logged_step_far_too_large_is_a_too_high_learning_rate():
    # The zoo's lr x100 (SGD lr 0.3 on MNIST): update ratio 0.2 at the first log, and the
    # phase over a log later (units dead, steps small). It was missed while the rule waited
    # for `patience` logged steps before looking at any.
    history = History()
    for step, ratio in ((19, 0.2), (39, 0.02), (59, 0.007)):
        history.record(step, {f"update_ratio/{w}": ratio for w in CONTEXT.weights}
                       | {"train/loss": 2.0})
    found = {f.code: f for f in replay(history, CONTEXT, Thresholds())}
    assert found["lr_too_high"].step == 19 and found["lr_too_high"].where == "model"


def test_overfitting_needs_rising_validation_and_falling_training_loss():
    history = History()
    for epoch, (val, train) in enumerate([(0.9, 1.5), (0.5, 0.8), (0.55, 0.4), (0.6, 0.2),
                                          (0.7, 0.1)]):
        history.record(epoch * 2 + 1, {"train/loss": train})
        history.record(epoch * 2 + 1, {"val/loss": val})
    assert codes(replay(history, CONTEXT, Thresholds()))["overfitting"] == "model"
    assert "overfitting" not in codes(replay(history, CONTEXT, Thresholds(overfit_epochs=4)))


def test_validation_noise_is_not_overfitting():
    # The satellite config, full length: test/acc 0.987, its validation loss 3.4% above its
    # best after three epochs of noise while the training loss fell (a false alarm before
    # the generalization-loss margin).
    history = History()
    for epoch, (val, train) in enumerate([(0.45, 0.52), (0.4189, 0.49), (0.4818, 0.46),
                                          (0.4438, 0.45), (0.433, 0.44)]):
        history.record(epoch * 63 + 62, {"train/loss": train})
        history.record(epoch * 63 + 62, {"val/loss": val})
    assert "overfitting" not in codes(replay(history, CONTEXT, Thresholds()))
    assert codes(replay(history, CONTEXT, Thresholds(overfit_rise=0.0)))["overfitting"] == "model"


def test_findings_merge_keep_the_first_sighting_and_print_one_line_each():
    first = Finding("dead_units", "warning", "features.1", 49, "dead")
    later = Finding("dead_units", "warning", "features.1", 99, "dead")
    error = Finding("symmetry", "error", "features.0", 0, "same")
    merged = merge([first], [later, error])
    assert [(f.code, f.step) for f in merged] == [("symmetry", 0), ("dead_units", 49)]
    block = console_block(merged, "end of fit")
    assert block.splitlines()[0] == "Doctor (end of fit): 1 error, 1 warning"
    assert len(block.splitlines()) == 3
    assert console_block([], "pre-flight") == "Doctor (pre-flight): no findings"
    info = Finding("batch_size", "info", "model", 0, "small")
    two = console_block([first, Finding("dead_units", "warning", "head", 9, "dead"), info, info], "x")
    assert two.splitlines()[0] == "Doctor (x): 2 warnings, 2 info"  # not "2 warning"
    record = first.to_dict()
    assert list(record) == ["code", "severity", "where", "step", "evidence", "message"]
    assert Finding.from_dict(json.loads(json.dumps(record))) == first


def test_doctor_state_survives_a_checkpoint():
    doctor = Doctor()
    doctor.history.record(9, {"train/loss": 2.0, "act_dead/features.1": 0.1})
    doctor.findings = [Finding("symmetry", "error", "features.0", 0, "same", {"units": 4})]
    doctor.preflight_done = True
    restored = Doctor()
    restored.load_state_dict(doctor.state_dict())
    assert restored.history.series("train/loss") == ([9], [2.0])
    assert restored.findings == doctor.findings and restored.preflight_done


def test_check_finds_symmetry_at_step_zero_without_training(tmp_path, capsys):
    # an error finding: check exits 1, so that CI can gate on it
    run_dir = run("check", *XOR, "--model.init_args.init", "zeros", root=tmp_path / "runs",
                  exit_code=1)
    out = capsys.readouterr().out
    result = metrics(run_dir)
    assert result["status"] == "completed" and result["global_step"] == 0
    symmetry = [f for f in result["findings"] if f["code"] == "symmetry"]
    assert symmetry and symmetry[0]["where"] == "features.0" and symmetry[0]["step"] == 0
    assert symmetry[0]["severity"] == "error" and symmetry[0]["evidence"]["units"] == 4
    assert (run_dir / "signal_propagation.png").stat().st_size > 1000
    preflight = json.loads((run_dir / "preflight.json").read_text())
    assert preflight["chance_loss"] == pytest.approx(math.log(2))
    assert [layer["name"] for layer in preflight["layers"]] == ["features.1"]
    assert not list(run_dir.rglob("*.ckpt"))  # no step taken, nothing saved
    assert "Doctor (pre-flight check, step 0): 1 error" in out
    assert "features.0  (step 0): all 4 units of features.0 start with identical" in out
    assert "symmetry" in result["checked"] and "initial_loss" in result["checked"]


@pytest.mark.parametrize("length", [["--trainer.max_epochs", "0"], ["--trainer.max_steps", "0"],
                                    ["--trainer.limit_train_batches", "0"]])
def test_check_runs_its_preflight_whatever_the_fits_length(tmp_path, length):
    """A zero-length fit skips the training start where the check runs: it used to end
    with "no findings" without having checked anything."""
    run_dir = run("check", *XOR, "--model.init_args.init", "zeros", *length,
                  root=tmp_path / "runs", exit_code=1)
    assert (run_dir / "preflight.json").exists()
    assert "symmetry" in codes([Finding(**f) for f in metrics(run_dir)["findings"]])


def test_doctor_changes_nothing_in_training_and_a_healthy_run_has_no_findings(tmp_path):
    args = [*XOR, "--trainer.max_epochs", "2", "--trainer.log_every_n_steps", "5"]
    with_doctor = run("fit", *args, root=tmp_path / "with")
    config = tmp_path / "xor_without_doctor.yaml"
    listed = yaml.safe_load(DEFAULTS.read_text())["trainer"]["callbacks"]
    without_doctor = [c for c in listed if not c["class_path"].endswith(".Doctor")]
    assert len(without_doctor) == len(listed) - 1
    xor = yaml.safe_load((CONFIGS / "xor.yaml").read_text())
    xor["trainer"]["callbacks"] = without_doctor
    config.write_text(yaml.safe_dump(xor))
    without = run("fit", *[a if a != str(CONFIGS / "xor.yaml") else str(config) for a in args],
                  root=tmp_path / "without")
    a, b = metrics(with_doctor), metrics(without)
    assert a["findings"] == [] and a["checked"] and b["findings"] == [] and b["checked"] == []
    for name in ("train/loss", "val/loss", "val/acc", "grad_norm/total"):
        assert a[name] == b[name], name  # bit for bit: the check used a copy and put RNGs back
    weights = [torch.load(next((d / "checkpoints").glob("*.ckpt")), map_location="cpu")["state_dict"]
               for d in (with_doctor, without)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert diagnose(with_doctor) == []  # the same verdict from the run's files


@requires_shared("mnist")
def test_divergence_is_a_finding_with_forensics(tmp_path):
    run_dir = run("fit", "--config", str(CONFIGS / "mnist.yaml"), "--trainer.logger", "false",
                  "--data.init_args.data_dir", str(SHARED_DATA / "mnist"),
                  "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "30",
                  "--trainer.limit_val_batches", "1", "--trainer.log_every_n_steps", "2",
                  "--optimizer.lr", "1000000", "--trainer.enable_model_summary", "false",
                  root=tmp_path / "runs")
    result = metrics(run_dir)
    diverged = [f for f in result["findings"] if f["code"] == "diverged"]
    assert result["status"] == "diverged" and len(diverged) == 1
    finding = diverged[0]
    assert finding["severity"] == "error" and result["reason"].startswith(f"step {finding['step']}: ")
    layer = finding["where"].removesuffix(".weight")
    assert layer in ("features.0", "features.2", "head")
    assert finding["evidence"]["steps"]  # the last logged values before it broke
    assert any(key.startswith(("update_ratio/", "grad_norm/")) for key in finding["evidence"])


def test_findings_reach_the_wandb_summary_and_table(tmp_path):
    run_dir = run("fit", *XOR, "--trainer.max_epochs", "1", "--model.init_args.init", "zeros",
                  "--trainer.logger", "lightning.pytorch.loggers.WandbLogger",
                  "--trainer.logger.offline", "true", root=tmp_path / "runs")
    output = subprocess.run(["wandb", "leet", "inspect", "--json", str(run_dir / "wandb")],
                            capture_output=True, text=True, check=True, timeout=120).stdout
    records = [json.loads(line) for line in output.splitlines() if line.strip()]
    summary = {k: v for r in records if r["type"] == "summary"  # (histograms get "remove" records)
               for k, v in r["summary"].get("update", {}).items()}
    history = {k: v for r in records if r["type"] == "history" for k, v in r["history"]["item"].items()}
    assert summary["findings"] == metrics(run_dir)["findings"]
    assert summary["findings"][0]["code"] == "symmetry"
    assert history["doctor/findings._type"] == "table-file"
    assert history["figures/signal_propagation._type"] == "image-file"


def test_doctor_on_a_folder_without_run_data_says_so_instead_of_no_findings(tmp_path, capsys):
    # A run killed before its first log leaves only wandb/; "no findings" would read as healthy.
    (tmp_path / "wandb").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        doctor_main([str(tmp_path)])
    assert exit_info.value.code == 1
    error = capsys.readouterr().err
    assert "holds nothing to diagnose" in error and "Traceback" not in error


def test_a_plateau_the_run_left_is_reported_as_over_at_the_end():
    # The depth study's Xavier run: at the chance loss for two epochs, then it learns.
    def run(losses: list[float]) -> list[Finding]:
        history = History()
        for i, loss in enumerate(losses):
            history.record(25 * i + 24, {"train/loss": loss})
        return settle(replay(history, CONTEXT, Thresholds()), history, CONTEXT, Thresholds())
    recovered = {f.code: f for f in run([2.30] * 12 + [2.0, 1.5, 1.0, 0.8, 0.6, 0.5])}["not_learning"]
    assert recovered.step == 224 and recovered.evidence["cleared_by_step"] == 449
    assert recovered.message.endswith("(no longer so by step 449)")
    assert recovered.severity == "error"  # it happened, and cost 200+ steps
    stuck = {f.code: f for f in run([2.30] * 18)}["not_learning"]
    assert "cleared_by_step" not in stuck.evidence


def test_an_adaptive_optimizers_large_first_step_is_info_and_a_graver_sighting_replaces_it():
    weights = [{"name": w, "update_ratio": 0.2} for w in CONTEXT.weights]
    rmsprop = judge(Preflight(CONTEXT, weights=weights, optimizer="RMSprop"), Thresholds())
    assert [(f.code, f.severity) for f in rmsprop] == [("lr_too_high", "info")]
    sgd = judge(Preflight(CONTEXT, weights=weights, optimizer="SGD", proportional_step=True),
                Thresholds())
    assert [(f.code, f.severity) for f in sgd] == [("lr_too_high", "warning")]
    adam_lr_1 = [{"name": w, "update_ratio": 19.0} for w in CONTEXT.weights]  # the zoo's Adam lr 1
    assert judge(Preflight(CONTEXT, weights=adam_lr_1, optimizer="Adam"), Thresholds())[0].severity == "warning"
    # Later, on the logged steps, the rule finds it too high: the warning replaces the info.
    later = Finding("lr_too_high", "warning", "model", 19, "each step changes the weights by 20%")
    (merged,) = merge(rmsprop, [later])
    assert merged.severity == "warning" and merged.step == 19
    assert merge([later], rmsprop) == [later]  # never the other way round


def test_an_sgd_subclass_is_judged_as_sgd_not_as_an_adaptive_optimizer():
    """Before, the pre-flight told SGD-like optimizers apart by class name, so a user's own
    subclass of SGD got the adaptive optimizers' lenient 'info' for a far too large step."""
    from netscope.doctor.preflight import run_preflight

    class MySGD(torch.optim.SGD):
        pass

    from netscope.models import MLP

    torch.manual_seed(0)
    model = MLP(num_classes=4, input_shape=(8,), hidden_sizes=[16])
    batch = (torch.randn(32, 8), torch.randint(0, 4, (32,)))
    # lr 2: the first step is 17-45% of the weights, far too large for SGD (over 10%), yet
    # below what would be too large for an adaptive optimizer's first step (100%).
    report = run_preflight(model, MySGD(model.parameters(), lr=2.0), batch, Thresholds())
    assert report.proportional_step and report.to_dict()["proportional_step"]
    assert [(f.code, f.severity) for f in report.findings if f.code == "lr_too_high"] == [
        ("lr_too_high", "warning")]
