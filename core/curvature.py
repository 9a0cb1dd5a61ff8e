"""Curvature and gradient noise of a loss: the mathematics, with no Lightning in it.

- :func:`top_eigenvalue`: the largest eigenvalue of a symmetric operator given only its
  products with vectors (here Hessian-vector products), by Lanczos iteration with full
  reorthogonalization, warm-started from the previous eigenvector.
- :func:`hessian_operator`: ``v -> D^1/2 H D^1/2 v`` for a loss's Hessian ``H`` by double
  backward (Pearlmutter's trick), ``D`` a diagonal preconditioner (the identity for SGD).
- :func:`ratios`: sharpness / limit wherever both were logged (a run's history).
- :class:`NoiseScale`: McCandlish et al.'s simple noise scale B_simple = tr(Σ)/|G|² from the
  gradients of two halves of a batch (their appendix A), averaged over steps.

PyTorch ships ``torch.func.hvp`` and ``torch.autograd.functional.hvp``, but no eigensolver
over an implicit operator (``torch.lobpcg`` needs the matrix or a dense ``n x k`` block and
is for large *sparse* problems); scipy's ``eigsh`` would move every vector to the host and
back. Lanczos over a handful of vectors is a few lines, so it is written here.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from netscope.core.history import History

#: The names ``callbacks.Curvature`` logs under (the contract's metric names), read by the
#: doctor, the figures and the study reports.
SHARPNESS, LIMIT, NOISE, BATCH = "sharpness", "sharpness_limit", "noise_scale", "batch_size"
#: ``metrics.json``'s summary: the median of sharpness / limit over the last third of the
#: measurements (how near the edge of stability the fit settled).
SETTLED = "sharpness_over_limit"

Operator = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Eigen:
    """A top eigenpair estimate: the value, its unit vector (flat), the products it took and
    the residual ``|A v - λ v|`` bound Lanczos gives (a fraction of ``|λ|`` when converged)."""

    value: float
    vector: torch.Tensor
    products: int
    residual: float


def top_eigenvalue(operator: Operator, start: torch.Tensor, iterations: int = 20,
                   tolerance: float = 1e-3) -> Eigen:
    """The largest (algebraic) eigenvalue of the symmetric ``operator``.

    Lanczos builds an orthonormal basis of the Krylov space of ``start`` and the tridiagonal
    matrix of ``operator`` in it; the top eigenvalue of that small matrix converges to the
    operator's, much faster than power iteration, and a negative eigenvalue of larger size
    (a saddle early in training) does not mislead it as it does power iteration. It stops
    when the residual bound is below ``tolerance`` x the value, after at most ``iterations``
    products. Started from the last eigenvector, a slowly moving top direction takes 2-4.
    """
    basis = [start / start.norm().clamp_min(torch.finfo(start.dtype).tiny)]
    alphas: list[float] = []
    betas: list[float] = []
    value, ritz, residual = math.nan, torch.ones(1, dtype=torch.float64), math.inf
    for _ in range(max(1, iterations)):
        w = operator(basis[-1])
        alphas.append(float(w @ basis[-1]))
        for q in basis:  # full reorthogonalization: a few vectors, and no ghost eigenvalues
            w = w - (w @ q) * q
        beta = float(w.norm())
        tridiagonal = torch.diag(torch.tensor(alphas, dtype=torch.float64))
        if betas:
            off = torch.tensor(betas, dtype=torch.float64)
            tridiagonal += torch.diag(off, 1) + torch.diag(off, -1)
        values, vectors = torch.linalg.eigh(tridiagonal)
        value, ritz = float(values[-1]), vectors[:, -1]
        residual = beta * abs(float(ritz[-1]))
        if residual <= tolerance * abs(value) or beta <= 1e-12 * max(abs(value), 1e-30):
            break
        betas.append(beta)
        basis.append(w / beta)
    count = len(alphas)
    vector = sum(float(c) * q for c, q in zip(ritz, basis[:count]))
    return Eigen(value, vector / vector.norm().clamp_min(1e-30), count, residual)


def flatten(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """One flat float32 vector of ``tensors``."""
    return torch.cat([t.reshape(-1).float() for t in tensors])


def unflatten(vector: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``vector`` cut into tensors shaped (and typed) like ``like``."""
    parts, start = [], 0
    for t in like:
        parts.append(vector[start:start + t.numel()].view_as(t).to(t.dtype))
        start += t.numel()
    return parts


def hessian_operator(loss: torch.Tensor, params: Sequence[torch.Tensor],
                     scale: torch.Tensor | None = None) -> Operator:
    """``v -> S H S v``: the Hessian of ``loss`` in ``params`` (flat), between a diagonal
    ``scale`` ``S = D^1/2`` when given (the square root of a preconditioner ``D``: ``S H S``
    has the eigenvalues of ``D H``, Cohen et al. 2022's preconditioned sharpness).

    The gradient is taken once with ``create_graph=True``; each product is one more
    backward through it (about twice a training step's backward)."""
    grads = torch.autograd.grad(loss, params, create_graph=True)

    def product(vector: torch.Tensor) -> torch.Tensor:
        v = vector if scale is None else vector * scale
        hv = torch.autograd.grad(grads, params, grad_outputs=unflatten(v, params),
                                 retain_graph=True, allow_unused=True)
        hv = flatten([h if h is not None else torch.zeros_like(p) for h, p in zip(hv, params)])
        return hv if scale is None else hv * scale

    return product


@dataclass
class NoiseScale:
    """B_simple = tr(Σ) / |G|², the batch size beyond which a larger batch stops buying
    fewer steps (McCandlish et al. 2018, "An empirical model of large-batch training").

    From the squared norms of gradients at two batch sizes B_small < B_big (appendix A):
    ``|G|² ≈ (B_big |G_big|² - B_small |G_small|²) / (B_big - B_small)`` and
    ``tr(Σ) ≈ (|G_small|² - |G_big|²) / (1/B_small - 1/B_big)``, both unbiased. Each step's
    pair is noisy (the |G|² estimate can be negative), so, as the paper does, the two are
    averaged separately over steps (an exponential mean, ``smoothing`` per update) and only
    their ratio is reported.
    """

    smoothing: float = 0.9
    grad_sq: float | None = None
    trace: float | None = None

    def update(self, small_sq: float, big_sq: float, small: int, big: int) -> float | None:
        """Add one pair of measurements; return the current estimate (``None`` while the
        averaged |G|² is not yet positive)."""
        grad_sq = (big * big_sq - small * small_sq) / (big - small)
        trace = (small_sq - big_sq) / (1 / small - 1 / big)
        self.grad_sq, self.trace = self._mix(self.grad_sq, grad_sq), self._mix(self.trace, trace)
        return self.value

    def _mix(self, old: float | None, new: float) -> float:
        """The exponential mean's next value (the first measurement as it is)."""
        return new if old is None else self.smoothing * old + (1 - self.smoothing) * new

    @property
    def value(self) -> float | None:
        if self.grad_sq is None or self.trace is None or self.grad_sq <= 0:
            return None
        return max(self.trace, 0.0) / self.grad_sq


def ratios(history: History) -> list[tuple[int, float, float, float]]:
    """``(step, sharpness, limit, sharpness / limit)`` wherever both were logged."""
    limits = dict(zip(*history.series(LIMIT)))
    return [(step, value, limits[step], value / limits[step])
            for step, value in zip(*history.series(SHARPNESS))
            if step in limits and limits[step] > 0]
