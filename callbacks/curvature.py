"""Curvature and gradient noise: ``sharpness``, ``sharpness_limit``, ``noise_scale``.

Why a learning rate is too high is curvature: a step is stable only while the sharpness
(the top Hessian eigenvalue of the training loss) stays below the optimizer's limit, 2/η for
gradient descent (:mod:`core.stability`), and training drives the sharpness up to that
limit and then hovers there (Cohen et al., ICLR 2021, "edge of stability"). Whether a larger
batch would help is the gradient noise scale (McCandlish et al. 2018). This callback
measures both, on its own cadence, on any model whose ``training_step`` returns its loss.

Off by default (``--trainer.callbacks+=Curvature``): each tracked step costs a handful of
Hessian-vector products on a fixed batch and one more backward split over two halves of the
current batch, 4x a training step on the MNIST MLP and 30x on the CIFAR ConvNet (double
backward through convolutions is dear). So the default cadence is a cost budget: measure on
a logging step, then wait as many steps as keep the measurements within ``budget`` (2%) of
the fit's time (docs/diagnostics.md gives the measured costs).
"""

import math
import statistics
import time
from collections import deque
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning_utilities.core.apply_func import apply_to_collection

from netscope.callbacks.diagnostic import Diagnostic
from netscope.callbacks.logging_sinks import log_scalars
from netscope.callbacks.run_summary import RunSummary
from netscope.core.compat import logger_step
from netscope.core.curvature import (
    BATCH,
    LIMIT,
    NOISE,
    SETTLED,
    SHARPNESS,
    NoiseScale,
    flatten,
    hessian_operator,
    top_eigenvalue,
)
from netscope.core.errors import one_line
from netscope.core.stability import stability
from netscope.doctor.preflight import rng_preserved, throwaway_copy, training_loss


class Curvature(Diagnostic):
    """Log the sharpness of the training loss against the optimizer's stability limit, and
    the gradient noise scale beside the batch size in use.

    - ``sharpness``: the top eigenvalue of the Hessian of the loss ``training_step`` returns,
      on a fixed batch (the fit's first), by Lanczos over Hessian-vector products (double
      backward), warm-started from the last eigenvector; for Adam, AdamW, RMSprop and Adagrad
      the preconditioned sharpness λ_max(P⁻¹H) of Cohen et al. 2022.
    - ``sharpness_limit``: the largest stable sharpness of the next step (2/η for SGD,
      (2 + 2β)/η with momentum β, ...; :mod:`core.stability`); none where none is known.
    - ``noise_scale``: B_simple from the gradients of the two halves of the current batch;
      ``batch_size``: the batch it was measured on.

    The work happens on a copy of the model loaded with the current weights (the fit's
    module, its logging, metrics, BatchNorm statistics and random numbers are untouched),
    in fp32, before the step's update.
    """

    def __init__(self, every_n_steps: int | None = None, budget: float = 0.02,
                 iterations: int = 20, tolerance: float = 1e-2, noise_scale: bool = True,
                 noise_smoothing: float = 0.9) -> None:
        """Args:
            every_n_steps: measure every this many optimizer steps (a fixed cadence, as the
                studies use); ``None`` (default): on logging steps, as often as ``budget``
                allows; ``0`` turns it off.
            budget: with ``every_n_steps=None``, the share of the fit's time the
                measurements may take: after a measurement of ``m`` seconds, with steps of
                ``s`` seconds, the next comes ``m / (budget s)`` steps later (rounded up to a
                logging step), so the cadence follows the model's cost.
            iterations: at most this many Hessian-vector products per sharpness.
            tolerance: stop when Lanczos's residual bound is below this fraction of the value.
            noise_scale: also measure the noise scale (one more backward per tracked step).
            noise_smoothing: the exponential mean's weight of the past in the noise scale's
                two averaged terms (McCandlish et al. average them over steps).
        """
        super().__init__(every_n_steps)
        self.budget = CostBudget(budget)
        self.iterations, self.tolerance = iterations, tolerance
        self.measure_noise = noise_scale
        self.noise = NoiseScale(noise_smoothing)
        self.fixed_batch: Any = None
        self.vector: torch.Tensor | None = None
        self.clone: LightningModule | None = None
        self.ratios: list[float] = []
        self.seconds: list[float] = []  # per measurement: its wall time,
        self.products: list[int] = []  # and its Hessian-vector products
        self.reasons: dict[str, str] = {}

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self.budget.tick(time.perf_counter())
        if self.fixed_batch is None:
            self.fixed_batch = apply_to_collection(batch, torch.Tensor,
                                                   lambda t: t.detach().clone())
        if not self.is_due(trainer) or self.every <= 0:
            return
        if self.every_n_steps is None and not self.budget.due(trainer.global_step):
            return
        if not getattr(pl_module, "automatic_optimization", True):
            self.stop("the model optimizes manually inside its training_step")
            return
        started = time.perf_counter()
        try:
            with rng_preserved(), torch.enable_grad():
                metrics = self.measure(trainer, pl_module, batch)
        except Exception as error:  # noqa: BLE001 - a model it cannot measure must still train
            self.stop(f"it failed: {one_line(error)}")
            return
        self.seconds.append(time.perf_counter() - started)
        self.budget.spent(trainer.global_step, self.seconds[-1], max(self.every, 1))
        self.log_values(trainer, metrics)

    def stop(self, why: str) -> None:
        """Measure no more in this fit, and say why (the doctor's coverage)."""
        self.every = 0
        self.reasons.setdefault("curvature", why)
        self.reasons.setdefault("batch_size", why)

    # ------------------------------------------------------------------------ measuring
    def copy_of(self, trainer: Trainer, pl_module: LightningModule) -> LightningModule:
        """The throwaway copy, made once and loaded with the fit's current weights."""
        if self.clone is None:
            self.clone = throwaway_copy(pl_module, trainer)
        else:
            self.clone.load_state_dict(pl_module.state_dict())
        self.clone.train(pl_module.training)
        return self.clone

    def measure(self, trainer: Trainer, pl_module: LightningModule, batch: Any) -> dict[str, float]:
        clone = self.copy_of(trainer, pl_module)
        cloned = dict(clone.named_parameters())  # the copy has the module's names
        live = [(name, p) for name, p in pl_module.named_parameters() if p.requires_grad]
        params = [cloned[name] for name, _ in live]
        metrics = self.sharpness(trainer, clone, params, [p for _, p in live])
        if self.measure_noise:
            metrics.update(self.noise_scale(clone, batch, params))
        return metrics

    def sharpness(self, trainer: Trainer, clone: LightningModule, params: list[torch.Tensor],
                  live: list[torch.Tensor]) -> dict[str, float]:
        loss = training_loss(clone, self.fixed_batch)
        if loss is None:
            self.stop("training_step returned no loss with a gradient")
            return {}
        limit = stability(trainer.optimizers[0] if trainer.optimizers else None, live)
        if limit.limit is None:
            self.reasons.setdefault("curvature", limit.reason or "no stability limit is known")
        scale = flatten(limit.scale) if limit.scale is not None else None
        size, start = sum(p.numel() for p in params), self.vector
        if start is None or start.numel() != size:  # a fixed start: the same run, the same value
            start = torch.randn(size, generator=torch.Generator().manual_seed(0))
        eigen = top_eigenvalue(hessian_operator(loss.float(), params, scale),
                               start.to(params[0].device), self.iterations, self.tolerance)
        self.vector = eigen.vector.detach()
        self.products.append(eigen.products)
        metrics = {SHARPNESS: eigen.value}
        if limit.limit is not None:
            metrics[LIMIT] = limit.limit
            self.ratios.append(eigen.value / limit.limit)
        return metrics

    def noise_scale(self, clone: LightningModule, batch: Any,
                    params: list[torch.Tensor]) -> dict[str, float]:
        size = batch_length(batch)
        if size is None or size < 2:
            self.reasons.setdefault("batch_size", "the batch has fewer than 2 samples")
            return {}
        half = size // 2
        grads = []
        for start in (0, half):
            part = apply_to_collection(batch, torch.Tensor, halved, start, half, size)
            loss = training_loss(clone, part)
            if loss is None:
                return {}
            grads.append(flatten(torch.autograd.grad(loss.float(), params, allow_unused=True,
                                                     materialize_grads=True)))
        small_sq = float((grads[0].square().sum() + grads[1].square().sum()) / 2)
        big_sq = float(((grads[0] + grads[1]) / 2).square().sum())
        value = self.noise.update(small_sq, big_sq, half, 2 * half)
        return {BATCH: float(size), **({NOISE: value} if value is not None else {})}

    # ---------------------------------------------------------------------- end of fit
    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.clone = None  # the copy's memory back
        if self.every > 0 and trainer.global_step < self.every:
            self.stop(f"the fit was {trainer.global_step} steps, fewer than Curvature's "
                      f"every_n_steps {self.every}: nothing was measured (set "
                      f"--trainer.callbacks.every_n_steps lower)")
        if not self.ratios:
            return
        last = self.ratios[-max(1, len(self.ratios) // 3):]
        settled = statistics.median(last)
        log_scalars(trainer, {SETTLED: settled}, logger_step(trainer))
        summary = RunSummary.of(trainer)
        if summary is not None:
            summary.metrics[SETTLED] = settled

    def state_dict(self) -> dict[str, Any]:
        """What a resumed fit continues from: the noise scale's averages and the ratios (the
        eigenvector is not kept: a restarted Lanczos takes a few more products once)."""
        return {"grad_sq": self.noise.grad_sq, "trace": self.noise.trace,
                "ratios": list(self.ratios), "next_step": self.budget.next_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.noise.grad_sq, self.noise.trace = state_dict.get("grad_sq"), state_dict.get("trace")
        self.ratios = list(state_dict.get("ratios", []))
        self.budget.next_step = state_dict.get("next_step", 0)


class CostBudget:
    """When to measure next so that the measurements take at most ``fraction`` of the fit's
    time: the gap after a measurement is its cost in typical steps (the median of the recent
    steps' wall times, each without the measurement it held) divided by ``fraction``."""

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction
        self.next_step = 0
        self.step_seconds: deque[float] = deque(maxlen=32)
        self.last: float | None = None
        self.pending = 0.0  # the measurement inside the step being timed

    def tick(self, now: float) -> None:
        """A training batch starts: the time since the last one, less the measurement it
        held, was one step's."""
        if self.last is not None:
            self.step_seconds.append(max(now - self.last - self.pending, 0.0))
        self.last, self.pending = now, 0.0

    def due(self, step: int) -> bool:
        return step >= self.next_step

    def spent(self, step: int, seconds: float, grid: int) -> None:
        """A measurement at ``step`` took ``seconds``; the next waits a whole number of
        ``grid`` steps (logging intervals) that keeps the budget (one interval while no step
        has been timed yet)."""
        self.pending = seconds
        typical = statistics.median(self.step_seconds) if self.step_seconds else 0.0
        gap = seconds / (self.fraction * typical) if typical > 0 and self.fraction > 0 else grid
        self.next_step = step + grid * max(1, math.ceil(gap / grid))


def halved(t: torch.Tensor, start: int, half: int, size: int) -> torch.Tensor:
    """Samples ``start`` to ``start + half`` of a batch's tensor (others pass unchanged)."""
    return t[start:start + half] if t.dim() and len(t) == size else t


def batch_length(batch: Any) -> int | None:
    """The number of samples in ``batch``: the first dimension of its first tensor."""
    found: list[int] = []
    apply_to_collection(batch, torch.Tensor, lambda t: found.append(len(t)) if t.dim() else None)
    return found[0] if found else None
