"""Curvature and gradient noise: exact answers where they are known in closed form.

- Linear least squares, L(w) = mean((Xw - y)²): the Hessian is 2XᵀX/n, so the logged
  ``sharpness`` must be its top eigenvalue, and ``sharpness_limit`` the optimizer's 2/η.
- The noise scale at a fixed point is a property of the data, not of the batch: runs at two
  batch sizes must agree with each other and with tr(Σ)/|G|² from per-sample gradients.
"""

import math

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from netscope.callbacks import Curvature
from netscope.core.curvature import NoiseScale, top_eigenvalue
from netscope.core.history import History
from netscope.core.stability import stability
from netscope.doctor.rules import Context, evaluate
from netscope.doctor.thresholds import Thresholds
from tests.helpers import CONFIGS, make_mnist, metrics, run

N, D = 256, 6


def least_squares_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(N, D, generator=generator) * torch.linspace(0.5, 3.0, D)
    y = x @ torch.randn(D, generator=generator) + 0.5 * torch.randn(N, generator=generator)
    return x, y


class LeastSquares(L.LightningModule):
    """A user's LightningModule: one linear layer, mean squared error, its own optimizer."""

    def __init__(self, optimizer: str = "sgd", lr: float = 0.01, momentum: float = 0.0) -> None:
        super().__init__()
        self.linear = nn.Linear(D, 1, bias=False)
        self.optimizer_name, self.lr, self.momentum = optimizer, lr, momentum

    def training_step(self, batch, batch_idx):
        x, y = batch
        return ((self.linear(x).squeeze(-1) - y) ** 2).mean()

    def configure_optimizers(self):
        if self.optimizer_name == "adam":
            return torch.optim.Adam(self.parameters(), lr=self.lr)
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=self.momentum)


class Recorder(L.Callback):
    """Every scalar the trainer's loggers would get, from the callback metrics' twin: the
    board netscope's diagnostics write to."""

    def __init__(self) -> None:
        self.logged: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        from netscope.callbacks.board import Board
        self.logged.append(Board.of(trainer).values(("sharpness", "noise_scale", "batch_size")))


def fit(module: L.LightningModule, batch_size: int, steps: int, tmp_path, **curvature) -> tuple:
    x, y = least_squares_data()
    curvature_callback = Curvature(**{"every_n_steps": 1, **curvature})
    recorder = Recorder()
    trainer = L.Trainer(max_steps=steps, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[curvature_callback, recorder], default_root_dir=tmp_path)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, drop_last=True)
    trainer.fit(module, loader)
    return curvature_callback, recorder.logged


def test_lanczos_finds_the_largest_eigenvalue_not_the_largest_in_size():
    generator = torch.Generator().manual_seed(1)
    basis, _ = torch.linalg.qr(torch.randn(50, 50, generator=generator))
    values = torch.linspace(-1, 1, 50) ** 3 * 4 - 1  # the most negative, -5, is the largest in size
    matrix = basis @ torch.diag(values) @ basis.T
    eigen = top_eigenvalue(lambda v: matrix @ v, torch.randn(50, generator=generator),
                           iterations=50, tolerance=1e-8)
    assert eigen.value == pytest.approx(float(values.max()), rel=1e-5)
    assert abs(float(eigen.vector @ basis[:, -1])) == pytest.approx(1.0, abs=1e-4)
    # warm-started from its own answer, it converges at once
    again = top_eigenvalue(lambda v: matrix @ v, eigen.vector, iterations=50, tolerance=1e-4)
    assert again.products <= 2 and again.value == pytest.approx(eigen.value, rel=1e-4)


def test_sharpness_of_least_squares_is_the_top_eigenvalue_of_2xtx_over_n(tmp_path):
    curvature, logged = fit(LeastSquares(lr=0.01), batch_size=N, steps=3, tmp_path=tmp_path,
                            tolerance=1e-6)
    x, _ = least_squares_data()
    exact = float(torch.linalg.eigvalsh(2 * x.T @ x / N).max())
    assert logged[0]["sharpness"] == pytest.approx(exact, rel=1e-4)
    assert logged[0]["sharpness_limit"] == pytest.approx(2 / 0.01)
    assert curvature.ratios[-1] == pytest.approx(exact / 200, rel=1e-4)


def test_the_limit_follows_momentum_and_nesterov():
    params = [nn.Parameter(torch.ones(3))]
    heavy = stability(torch.optim.SGD(params, lr=0.1, momentum=0.9), params)
    assert heavy.limit == pytest.approx((2 + 2 * 0.9) / 0.1) and heavy.scale is None
    nesterov = stability(torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True), params)
    assert nesterov.limit == pytest.approx((2 + 1.8) / (0.1 * (1 + 1.8)))
    assert "no stability limit is known" in stability(torch.optim.NAdam(params), params).reason


def test_adams_sharpness_is_preconditioned_against_38_over_lr(tmp_path):
    _, logged = fit(LeastSquares("adam", lr=0.001), batch_size=N, steps=4,
                            tmp_path=tmp_path, tolerance=1e-6)
    # before its first step Adam has no statistics: no limit that step, one after
    assert "sharpness_limit" in logged[-1]
    assert logged[-1]["sharpness_limit"] == pytest.approx(38 / 0.001)
    assert logged[-1]["sharpness"] > 0


def exact_noise_scale(w: torch.Tensor) -> float:
    """tr(Σ)/|G|² from every sample's gradient of (x·w - y)² at ``w``."""
    x, y = least_squares_data()
    per_sample = 2 * (x @ w - y)[:, None] * x
    mean = per_sample.mean(0)
    trace = float(((per_sample - mean) ** 2).sum(1).mean())
    return trace / float(mean.square().sum())


@pytest.mark.parametrize("batch_size", [16, 64])
def test_noise_scale_is_the_same_at_two_batch_sizes(batch_size, tmp_path):
    # lr 0: every step is at the same point, so the estimate's average converges there
    torch.manual_seed(0)
    module = LeastSquares(lr=0.0)
    curvature, logged = fit(module, batch_size=batch_size, steps=200, tmp_path=tmp_path,
                            noise_smoothing=0.99)
    exact = exact_noise_scale(module.linear.weight.detach().squeeze(0))
    assert logged[-1]["batch_size"] == batch_size
    assert logged[-1]["noise_scale"] == pytest.approx(exact, rel=0.25)
    assert "every learning rate is 0" in curvature.reasons["curvature"]


def test_noise_scale_estimator_is_unbiased_on_its_own_terms():
    noise = NoiseScale(smoothing=0.0)
    # |G|² = 4, tr(Σ) = 40: at batch b the expected |G_b|² is 4 + 40/b
    assert noise.update(4 + 40 / 8, 4 + 40 / 16, 8, 16) == pytest.approx(10.0)
    assert math.isfinite(noise.value)


# ----------------------------------------------------------------------- the doctor's reading


def history_of(sharpness: list[float], limit: float = 200.0, lr: float = 0.01,
               noise: list[float] = (), batch: int = 64) -> History:
    history = History()
    for step, value in enumerate(sharpness):
        history.record(step * 10, {"sharpness": value, "sharpness_limit": limit, "lr": lr})
    for step, value in enumerate(noise):
        history.record(step * 10, {"noise_scale": value, "batch_size": batch})
    return history


def found(history: History) -> dict[str, object]:
    return {f.code: f for f in evaluate(history, Context(), Thresholds(), 100)}


def test_a_sharpness_at_the_limit_is_healthy_and_says_so():
    findings = found(history_of([150, 196, 205, 199]))
    assert set(findings) == {"edge_of_stability"} and findings["edge_of_stability"].severity == "info"
    assert "edge of stability" in findings["edge_of_stability"].message


def test_a_sharpness_still_rising_towards_the_limit_is_not_yet_at_the_edge():
    # the edge-of-stability study at η = 0.2: 0.71x at step 219 on its way up (0.9x at 429)
    assert "edge_of_stability" not in found(history_of([130, 136, 142]))


def test_an_overshooting_sharpness_is_a_too_high_learning_rate_with_a_stable_rate():
    history = history_of([420, 415, 412])
    for step, loss in zip((-20, -10, 0, 10, 20), (0.9, 0.8, 1.2, 1.9, 2.6)):  # rising: overshoot
        history.record(step, {"train/loss": loss})
    finding = found(history)["lr_too_high"]
    assert finding.severity == "warning"
    assert "sharpness 412 is 2.1x the stability limit 200" in finding.message
    assert "η ≤ 0.0049 is stable" in finding.message


def test_a_sharp_fixed_batch_while_the_loss_falls_is_no_verdict():
    # the depth study's Kaiming MLP at batch 64: 3-6x the limit on its fixed batch, and it
    # trained to 95%; an unstable step would have raised the loss
    history = history_of([830, 1140, 666])
    for step, loss in zip((-20, -10, 0, 10, 20), (2.3, 2.2, 1.1, 1.3, 0.6)):
        history.record(step, {"train/loss": loss})
    assert "lr_too_high" not in found(history)


def test_batch_advice_only_on_strong_evidence():
    assert "batch_size_small" in found(history_of([], noise=[900, 1000, 950, 1100, 990]))
    assert not {"batch_size_small", "batch_size_large"} & set(
        found(history_of([], noise=[900, 1000, 300, 1100, 990])))  # one log within 10x
    assert "batch_size_large" in found(history_of([], noise=[5, 4, 6, 5, 5], batch=512))


# ------------------------------------------------------------------- through main.py, any model

SHORT = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "20",
         "--trainer.limit_val_batches", "2", "--trainer.limit_test_batches", "2",
         "--trainer.log_every_n_steps", "5", "--trainer.logger", "false",
         "--trainer.enable_model_summary", "false"]


@pytest.fixture(scope="module")
def mnist(tmp_path_factory: pytest.TempPathFactory):
    return make_mnist(tmp_path_factory.mktemp("mnist"), train=1500, test=100)


@pytest.mark.parametrize("model", ["MLP", "tests.user_models.PlainNet"])
def test_curvature_through_main_on_any_model(model, mnist, tmp_path):
    run_dir = run("fit", "--config", str(CONFIGS / "mnist.yaml"), "--data.init_args.data_dir",
                  str(mnist), *SHORT, "--model", model, "--trainer.callbacks+=Curvature",
                  "--trainer.callbacks.every_n_steps", "5", root=tmp_path)
    result = metrics(run_dir)
    assert result["sharpness"] > 0 and result["sharpness_limit"] > result["sharpness"]
    assert 0 < result["sharpness_over_limit"] < 1 and result["noise_scale"] > 0
    assert "curvature" in result["checked"]  # 4 measurements: enough for the sharpness (3),
    assert "fewer than the 5 it needs" in result["not_checked"]["batch_size"]  # not the batch
    assert (run_dir / "curvature.png").is_file()


def test_without_curvature_the_doctor_says_it_did_not_look(mnist, tmp_path):
    run_dir = run("fit", "--config", str(CONFIGS / "mnist.yaml"), "--data.init_args.data_dir",
                  str(mnist), *SHORT, root=tmp_path)
    result = metrics(run_dir)
    assert "sharpness" not in result and not (run_dir / "curvature.png").exists()
    assert result["not_checked"]["curvature"].startswith("off by default")


def test_measuring_does_not_change_what_is_trained(tmp_path):
    """The measurements run on a copy, with the random numbers restored: a fit with Curvature
    ends with exactly the weights of a fit without it (shuffled batches, dropout)."""
    def trained(with_curvature: bool) -> torch.Tensor:
        L.seed_everything(3)
        module = LeastSquares(lr=0.01, momentum=0.9)
        module.linear = nn.Sequential(nn.Dropout(0.2), nn.Linear(D, 1, bias=False))
        x, y = least_squares_data()
        callbacks = [Curvature(every_n_steps=2)] if with_curvature else []
        trainer = L.Trainer(max_steps=12, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False,
                            callbacks=callbacks, default_root_dir=tmp_path)
        trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True))
        if with_curvature:
            assert len(callbacks[0].seconds) == 6
        return module.linear[1].weight.detach().clone()

    assert torch.equal(trained(True), trained(False))


def test_a_divergence_names_the_curvature_that_caused_it(tmp_path):
    from netscope.callbacks import DivergenceGuard
    from netscope.callbacks.board import Board
    x, y = least_squares_data()
    exact = float(torch.linalg.eigvalsh(2 * x.T @ x / N).max())
    lr = 3.0 / exact  # ηλ = 3: the error along the top direction doubles every step
    guard, curvature = DivergenceGuard(check_every_n_steps=1), Curvature(every_n_steps=1)
    trainer = L.Trainer(max_steps=200, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[curvature, guard], default_root_dir=tmp_path)
    trainer.fit(LeastSquares(lr=lr), DataLoader(TensorDataset(x, y), batch_size=N))
    diverged = next(f for f in Board.of(trainer).findings if f.code == "diverged")
    assert diverged.evidence["sharpness"] == pytest.approx(exact, rel=1e-2)
    assert "1.5x the stability limit" in diverged.message


def rising_validation(ratios: list[float]) -> History:
    """Validation loss above its best for 3 epochs while the training loss falls, with the
    sharpness / limit ``ratios`` measured over those epochs."""
    history = History()
    for epoch, (val, train) in enumerate(zip([0.6, 0.5, 0.62, 0.7, 0.8], [1.0, 0.9, 0.8, 0.7, 0.6])):
        history.record(epoch * 100 + 99, {"val/loss": val, "train/loss": train})
    for step, ratio in zip(range(120, 500, 40), ratios):
        history.record(step, {"sharpness": 200 * ratio, "sharpness_limit": 200.0})
    return history


def test_rising_validation_loss_with_a_swinging_sharpness_is_a_too_high_learning_rate():
    # RMSprop at lr 0.01 on the satellite images: the sharpness swings past 2/η, and the
    # validation loss with it; the doctor called that overfitting before
    swinging = found(rising_validation([0.7, 2.4, 0.6, 1.5, 0.9, 3.1, 0.8, 1.2, 0.7, 1.4]))
    assert "overfitting" not in swinging
    assert "up to 3.1x" in swinging["lr_too_high"].message
    calm = found(rising_validation([0.05, 0.06, 0.05, 0.07, 0.06, 0.05, 0.06, 0.05, 0.06, 0.05]))
    assert "overfitting" in calm and "lr_too_high" not in calm


def test_a_later_sighting_adds_its_curvature_to_a_known_finding():
    from netscope.doctor.findings import Finding, merge
    first = Finding("lr_too_high", "warning", "model", 0, "the first step is large", {"x": 1})
    later = Finding("lr_too_high", "warning", "model", 300, "the sharpness swings",
                    {"sharpness_over_limit": 1.2})
    [merged] = merge([first], [later])
    assert merged.step == 0 and "later (step 300): the sharpness swings" in merged.message
    assert merged.evidence["later"]["sharpness_over_limit"] == 1.2
    assert merge([merged], [later]) == [merged]  # once


def test_the_study_figure_draws_sharpness_over_limit_per_setting():
    from netscope.figures.curvature import study_curvature_figure
    from netscope.figures.study import Group
    runs = [history_of([150, 196, 205], limit=200.0), history_of([10, 12, 11], limit=200.0)]
    figure = study_curvature_figure([Group("at the edge", runs[:1]), Group("below", runs[1:])], "t")
    [axis] = figure.axes
    means = [line.get_ydata() for line in axis.lines[:2]]
    assert list(means[0]) == pytest.approx([0.75, 0.98, 1.025]) and max(means[1]) < 0.1
    assert study_curvature_figure([Group("none", [History()])], "t") is None


def test_the_default_cadence_keeps_the_measurements_within_their_budget():
    from netscope.callbacks.curvature import CostBudget
    budget = CostBudget(0.02)
    for i in range(10):
        budget.tick(i * 0.01)  # steps of 10 ms
    budget.spent(49, seconds=0.1, grid=50)  # one measurement = 10 steps
    assert budget.next_step == 49 + 500  # 10 steps / 2% = 500 steps, on the logging grid
    budget.tick(0.2)  # the step that measured counts without its measurement
    assert budget.step_seconds[-1] == pytest.approx(0.01)


def test_by_default_a_fit_measures_on_a_logging_step_then_waits_for_its_budget(tmp_path):
    x, y = least_squares_data()
    curvature = Curvature()  # every_n_steps None: the budget decides
    trainer = L.Trainer(max_steps=60, log_every_n_steps=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[curvature],
                        default_root_dir=tmp_path)
    trainer.fit(LeastSquares(lr=0.01), DataLoader(TensorDataset(x, y), batch_size=32))
    # a measurement costs about a step or more here, so 2% of the time leaves room for a few
    # of the 60 logging steps (the first two, before a step was timed, then one in ~50)
    assert 1 <= len(curvature.seconds) <= 5 and curvature.budget.next_step > 2
