"""Stop a run that diverges, and say where: a study result, not a crash."""

import math
from collections import deque
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities.types import STEP_OUTPUT
from torch import nn

from netscope.callbacks.board import Board
from netscope.callbacks.console import say
from netscope.core.compat import logger_step
from netscope.core.curvature import LIMIT, SHARPNESS
from netscope.core.errors import UserError
from netscope.doctor.findings import Finding
from netscope.models.wrapped import inspected

#: The logged families kept for the forensics of a divergence.
FORENSICS = ("update_ratio/", "grad_norm/", "act_mean/", "act_std/")


class DivergenceGuard(Callback):
    """Stop training when a gradient or the loss is not finite, or the loss explodes.

    Every ``check_every_n_steps``-th batch is checked twice, each check one wait for the
    device: the norm of all gradients before the optimizer step, the batch loss after it.
    The loss of the first batch is always read: it is the reference for ``loss_factor``.
    When a gradient is NaN/inf, the loss is NaN/inf, or the loss exceeds ``loss_factor``
    times the first loss checked, the guard sets ``trainer.should_stop`` and adds a
    ``diverged`` finding to the run's findings (``metrics.json`` then reads
    ``status: diverged`` with its reason); the process ends normally (exit 0) and the test
    after fit is skipped. The finding's evidence holds the forensics: the last few values
    the diagnostics logged for the failing layer (update ratio, gradient norm, activation
    mean and std of the activation after it) before it broke.

    The reason names the step (as logged: ``trainer/global_step``) and where it went wrong.
    For non-finite gradients the batch is run forward once more, with the weights that
    produced them, to find the first layer whose output is not finite; when the forward
    pass is finite, the first parameter with non-finite gradients counting back from the
    loss. For an exploding loss, the parameter with the largest gradient.

    Under fp16 mixed precision, non-finite gradients are the loss scaler's business (it
    skips those steps), so only the loss is checked. Under DDP all ranks check at the same
    steps and the decision is reduced across them, so they stop together.
    """

    def __init__(self, loss_factor: float = 100.0, check_every_n_steps: int = 10) -> None:
        """Args:
            loss_factor: stop when the loss exceeds this multiple of the first loss checked
                (``0`` turns this test off; non-finite values always stop the run).
            check_every_n_steps: check every this many training batches. Each check costs
                a few percent of a small network's step (it waits for the device and reads
                every gradient); a diverging run rarely needs more than 10 steps to show it.
        """
        if loss_factor < 0 or check_every_n_steps < 1:
            raise UserError("loss_factor must be >= 0 and check_every_n_steps >= 1")
        self.loss_factor = loss_factor
        self.check_every_n_steps = check_every_n_steps
        self.initial_loss: float | None = None
        self.batch: Any = None
        self.stopped = False
        # The diagnostics' values logged since the previous check, for the forensics; a few
        # logging steps are enough to show the run breaking.
        self.recent: deque[tuple[int, dict[str, float]]] = deque(maxlen=4)
        self.seen: dict[str, int] = {}
        self.board: Board | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.board = Board.of(trainer)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.initial_loss, self.stopped = None, False
        self.recent.clear()
        self.seen = {}

    def remember(self, trainer: Trainer) -> None:
        """Keep the diagnostics' values logged since the last check."""
        fresh = self.board.since(self.seen, FORENSICS) if self.board is not None else {}
        if fresh:
            self.recent.append((logger_step(trainer), fresh))

    def due(self, trainer: Trainer) -> bool:
        return not self.stopped and (logger_step(trainer) + 1) % self.check_every_n_steps == 0

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self.batch = batch  # kept for the step only, to replay it if the gradients break

    @torch.no_grad()
    def on_before_optimizer_step(self, trainer: Trainer, pl_module: LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        if not self.due(trainer) or getattr(trainer.precision_plugin, "scaler", None) is not None:
            return
        self.remember(trainer)
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        reason = None
        if grads and not math.isfinite(total_norm(grads).item()):
            where, text = locate(trainer, pl_module, self.batch)
            reason = where, f"non-finite gradients; {text}"
        self.decide(trainer, pl_module, reason)

    @torch.no_grad()
    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: STEP_OUTPUT,
                           batch: Any, batch_idx: int) -> None:
        self.batch = None
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        first = self.initial_loss is None  # the first loss is always read: the reference
        if not isinstance(loss, torch.Tensor) or not (self.due(trainer) or first):
            return
        self.remember(trainer)
        value, reason = loss.detach().float().item(), None
        if self.initial_loss is None and math.isfinite(value):
            self.initial_loss = value
        if not math.isfinite(value):
            bad = next((n for n, p in inspected(pl_module).named_parameters()
                        if not p.isfinite().all()), None)
            where, text = (bad, f"first non-finite weights in {bad}") if bad else \
                largest_gradient(inspected(pl_module))
            reason = where, f"non-finite loss ({value}); {text}"
        elif self.initial_loss and value > self.loss_factor * self.initial_loss > 0:
            where, text = largest_gradient(inspected(pl_module))
            reason = where, (f"loss {value:.4g} exceeded {self.loss_factor:g} x the initial loss "
                             f"{self.initial_loss:.4g}; {text}")
        self.decide(trainer, pl_module, reason)

    def decide(self, trainer: Trainer, pl_module: LightningModule,
               reason: tuple[str, str] | None) -> None:
        """Stop every rank when any rank has a ``(where, what)`` reason (call on all ranks at
        the same steps), and record the verdict as a ``diverged`` finding."""
        if not trainer.strategy.reduce_boolean_decision(reason is not None, all=False):
            return
        where, text = reason or ("model", "another process diverged")
        step = logger_step(trainer)
        self.stopped = trainer.should_stop = True
        say(f"Training diverged and was stopped: step {step}: {text}")
        board = self.board or Board.of(trainer)
        curvature, clause = last_curvature(board)
        finding = Finding(
            "diverged", "error", where, step,
            f"training diverged ({text}) and the divergence guard stopped it{clause}; try a "
            f"smaller learning rate, gradient clipping or a learning-rate warm-up",
            {"reason": text, **forensics(inspected(pl_module), where, list(self.recent)),
             **curvature})
        board.add_findings([finding])


def last_curvature(board: Board) -> tuple[dict[str, Any], str]:
    """The last sharpness ``callbacks.Curvature`` measured against its limit, as evidence
    and a clause for the message (nothing when it was not measured)."""
    if SHARPNESS not in board.latest or LIMIT not in board.latest:
        return {}, ""
    (step, sharpness), (_, limit) = board.latest[SHARPNESS], board.latest[LIMIT]
    ratio = sharpness / limit if limit > 0 else float("nan")
    clause = (f"; the last measured sharpness, {sharpness:.3g} at step {step}, was {ratio:.1f}x "
              f"the stability limit {limit:.3g}")
    return {"sharpness": sharpness, "sharpness_limit": limit, "sharpness_step": step}, clause


def forensics(module: nn.Module, where: str,
              recent: list[tuple[int, dict[str, float]]]) -> dict[str, Any]:
    """The last logged values around ``where`` (a layer or parameter): the update ratio and
    gradient norm of its weight, and the mean and std of the activation layer after it."""
    names = [name for name, _ in module.named_modules()]
    layer = where.removesuffix(".weight").removesuffix(".bias")
    after = names[names.index(layer) + 1:] if layer in names else []
    keys = [f"update_ratio/{layer}.weight", f"grad_norm/{layer}.weight", "grad_norm/total"]
    activation = next((n for n in after if recent and f"act_std/{n}" in recent[-1][1]), None)
    if activation is not None:
        keys += [f"act_mean/{activation}", f"act_std/{activation}"]
    return {"steps": [step for step, _ in recent],
            **{key: [float(values[key]) for _, values in recent if key in values]
               for key in keys if any(key in values for _, values in recent)}}


def locate(trainer: Trainer, pl_module: LightningModule, batch: Any) -> tuple[str, str]:
    """Where non-finite values first appear for ``batch``: the first layer (in execution
    order) whose output is not finite though its inputs are, or else the first parameter
    with non-finite gradients counting back from the loss.

    The batch is replayed through ``pl_module(batch[0])`` (netscope's models take the
    inputs first) under the run's precision; buffers such as BatchNorm statistics are
    restored afterwards.
    """
    found: list[tuple[str, str]] = []

    def hook(name: str):
        def check(module: nn.Module, inputs: Any, output: Any) -> None:
            if found or not isinstance(output, torch.Tensor) or output.isfinite().all():
                return
            if all(not isinstance(x, torch.Tensor) or x.isfinite().all() for x in inputs):
                found.append((name, f"{name} ({type(module).__name__}"
                                    f"{describe_parameters(name, module)})"))
        return check

    buffers = {name: b.clone() for name, b in pl_module.named_buffers()}
    handles = [m.register_forward_hook(hook(n))
               for n, m in inspected(pl_module).named_modules() if n]
    try:
        with trainer.precision_plugin.forward_context():
            pl_module(batch[0] if isinstance(batch, (list, tuple)) else batch)
    except Exception:  # a model this replay does not fit: fall back to the gradients
        pass
    finally:
        for handle in handles:
            handle.remove()
        for name, buffer in pl_module.named_buffers():
            buffer.copy_(buffers[name])
    if found:
        return found[0][0], f"the forward pass first produced non-finite values in {found[0][1]}"
    named = list(inspected(pl_module).named_parameters())
    backwards = [n for n, p in reversed(named)
                 if p.grad is not None and not p.grad.isfinite().all()]
    if backwards:
        return backwards[0], f"first non-finite gradient in {backwards[0]}, counting back from the loss"
    where, text = largest_gradient(inspected(pl_module))
    return where, f"the gradient norm overflowed; {text}"


def describe_parameters(name: str, module: nn.Module) -> str:
    """``, non-finite values in <param>`` or ``, largest parameter <param> (norm N)`` for the
    module's own parameters; empty when it has none."""
    own = [(f"{name}.{n}", p) for n, p in module.named_parameters(recurse=False)]
    if not own:
        return ""
    broken = [n for n, p in own if not p.isfinite().all()]
    if broken:
        return f", non-finite values in {broken[0]}"
    norm, largest = max((p.norm().item(), n) for n, p in own)
    return f", largest parameter {largest} (norm {norm:.3g})"


def total_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """L2 norm of all ``tensors`` as one vector, in a few fused kernels (no per-tensor loop in
    Python): ``torch.nn.utils.get_total_norm`` where torch has it (2.6+), else the same
    ``torch._foreach_norm`` that ``clip_grad_norm_`` uses."""
    if hasattr(torch.nn.utils, "get_total_norm"):
        return torch.nn.utils.get_total_norm(tensors)
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tensors)))


def largest_gradient(module: nn.Module) -> tuple[str, str]:
    """``(<param>, "largest gradient in <param> (norm N)")``."""
    norms = [(p.grad.norm().item(), n) for n, p in module.named_parameters() if p.grad is not None]
    if not norms:
        return "model", "no gradients"
    norm, name = max(norms)
    return name, f"largest gradient in {name} (norm {norm:.3g})"
