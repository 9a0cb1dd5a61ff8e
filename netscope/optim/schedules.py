"""Build the optimizer and LR schedule a config chose, with lengths that fit the run.

LightningCLI takes any ``torch.optim`` optimizer and scheduler from ``--optimizer`` and
``--lr_scheduler``, but builds them before the fit knows how long it is. netscope builds
them in ``configure_optimizers``, when Lightning knows the fit's length
(``trainer.estimated_stepping_batches``, ``trainer.max_epochs``), so that a config holds
only choices: a schedule length or peak rate it leaves out (or sets to ``null``) is taken
from the fit, and ``--trainer.max_epochs``, ``--data.init_args.batch_size`` and
``limit_train_batches`` overrides keep the schedule's shape.

What is derived, per scheduler (in the scheduler's own unit: optimizer steps when the
model's ``lr_scheduler_interval`` is ``step``, epochs otherwise):

- ``OneCycleLR``: ``total_steps`` (unless ``epochs`` and ``steps_per_epoch`` are given),
  and ``max_lr``, the optimizer's learning rate (so the rate is typed once);
- ``LinearLR``, ``ConstantLR``, ``PolynomialLR``: ``total_iters`` when ``null``;
- ``CosineAnnealingLR``: ``T_max`` when ``null``.

A length the config does set must fit the run: a ``OneCycleLR`` that does not end with the
fit, or a schedule longer than the fit, is refused with a message.
"""

import math
from typing import Any, Literal

import torch
from jsonargparse import Namespace
from lightning.pytorch import Trainer
from lightning.pytorch.cli import instantiate_class
from torch.optim.lr_scheduler import (
    ConstantLR,
    CosineAnnealingLR,
    LinearLR,
    OneCycleLR,
    PolynomialLR,
    ReduceLROnPlateau,
)

from netscope.core.errors import UserError, first_line, innermost

Interval = Literal["epoch", "step"]

#: The init argument that holds each scheduler's length.
LENGTH_ARGUMENT: dict[type, str] = {
    OneCycleLR: "total_steps", LinearLR: "total_iters", ConstantLR: "total_iters",
    PolynomialLR: "total_iters", CosineAnnealingLR: "T_max",
}


def length_argument(scheduler_class: type) -> str | None:
    """The init argument that holds this scheduler's length, if netscope derives it."""
    return next((k for cls, k in LENGTH_ARGUMENT.items() if issubclass(scheduler_class, cls)), None)


def class_spec(spec: Any) -> dict[str, Any] | None:
    """``{"class_path": ..., "init_args": {...}}`` from a parsed config value (or ``None``)."""
    if spec is None or spec is False or spec == "null":
        return None
    if isinstance(spec, Namespace):
        spec = spec.as_dict()
    if not isinstance(spec, dict) or not spec.get("class_path"):
        return None
    return {"class_path": spec["class_path"], "init_args": dict(spec.get("init_args") or {})}


def fit_length(trainer: Trainer, interval: Interval) -> int:
    """The fit's length in the scheduler's unit: optimizer steps or epochs."""
    steps = trainer.estimated_stepping_batches
    if not math.isfinite(steps):
        raise UserError("The LR schedule spans the whole fit, and this fit has no set length. "
                        "Set trainer.max_epochs or trainer.max_steps (max_time alone is not "
                        "enough).")
    if interval == "step":
        return int(steps)
    epochs = trainer.max_epochs
    if epochs is None or epochs < 0:  # a fit bounded by max_steps: epochs it will take
        if not math.isfinite(trainer.num_training_batches):
            # Lightning's estimated_stepping_batches returns max_steps without setting up
            # the training loader when max_epochs is -1; count its batches as it would.
            trainer.fit_loop.setup_data()
        per_epoch = max(trainer.num_training_batches // trainer.accumulate_grad_batches, 1)
        epochs = math.ceil(steps / per_epoch)
    return int(epochs)


def build_optimizers(parameters: Any, optimizer: Any, lr_scheduler: Any, trainer: Trainer,
                     interval: Interval) -> Any:
    """What ``LightningModule.configure_optimizers`` returns for the chosen classes.

    Args:
        parameters: the parameters (or parameter groups) to optimize.
        optimizer: the ``optimizer`` config value (``class_path``/``init_args``).
        lr_scheduler: the ``lr_scheduler`` config value, or ``None``.
        trainer: the trainer running the fit (for its length).
        interval: advance the schedule every optimizer ``step`` or every ``epoch``.
    """
    optimizer_spec = class_spec(optimizer) or {"class_path": "torch.optim.SGD",
                                               "init_args": {"lr": 0.01}}
    built = instantiate_class(parameters, optimizer_spec)
    scheduler_spec = class_spec(lr_scheduler)
    if scheduler_spec is None:
        return built
    scheduler_class = _import(scheduler_spec["class_path"])
    scheduler_spec["init_args"] = fill_lengths(scheduler_class, scheduler_spec["init_args"],
                                               built, trainer, interval)
    scheduler = instantiate_class(built, scheduler_spec)
    if isinstance(scheduler, ReduceLROnPlateau):  # needs a metric, known once per epoch
        return {"optimizer": built, "lr_scheduler": {"scheduler": scheduler,
                                                     "monitor": scheduler_spec["init_args"].get(
                                                         "monitor", "val/loss")}}
    return {"optimizer": built, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}


def fill_lengths(scheduler_class: type, init_args: dict[str, Any],
                 optimizer: torch.optim.Optimizer, trainer: Trainer,
                 interval: Interval) -> dict[str, Any]:
    """``init_args`` with the lengths (and ``OneCycleLR``'s peak) the config left out taken
    from the fit; a length the config set is checked against the fit."""
    args = dict(init_args)
    if issubclass(scheduler_class, OneCycleLR) and args.get("max_lr") is None:
        args["max_lr"] = [group["lr"] for group in optimizer.param_groups]
    key = length_argument(scheduler_class)
    if key is None:
        return args
    if issubclass(scheduler_class, OneCycleLR) and args.get("epochs") and args.get("steps_per_epoch"):
        return args  # the user spelled the length out the other way
    needed = fit_length(trainer, interval)
    name = scheduler_class.__name__
    given = args.get(key)
    if given is None:
        args[key] = needed
    elif issubclass(scheduler_class, OneCycleLR) and given != needed:
        raise UserError(
            f"The {name} schedule is {count(given, interval)} long, but this fit takes "
            f"{count(needed, interval)}: "
            f"it would {'end inside its cycle' if given > needed else 'run past its end'}. "
            f"Leave lr_scheduler.init_args.{key} out (or null) and netscope sets it from the fit.")
    elif given > needed:
        raise UserError(
            f"The {name} schedule is {count(given, interval)} long, but this fit takes only "
            f"{count(needed, interval)}, so it would end inside the schedule. Set "
            f"lr_scheduler.init_args.{key} null to span the whole fit, or to at most {needed}.")
    return args


def check_choice(module: torch.nn.Module, optimizer: Any, lr_scheduler: Any) -> None:
    """Build the chosen optimizer and schedule once on ``module``'s parameters, before the
    fit, so that a value a constructor refuses (``--optimizer.lr -0.1``) is reported as one
    paragraph naming the option instead of failing when training starts."""
    optimizer_spec = class_spec(optimizer)
    parameters = [p for p in module.parameters() if p.requires_grad]
    if optimizer_spec is None or not parameters:
        return
    try:
        built = instantiate_class(parameters, optimizer_spec)
    except (ValueError, TypeError) as error:
        raise UserError(_refused("optimizer", optimizer_spec, error)) from None
    scheduler_spec = with_trial_lengths(lr_scheduler, built)
    if scheduler_spec is not None:
        try:
            instantiate_class(built, scheduler_spec)
        except (ValueError, TypeError) as error:
            raise UserError(_refused("lr_scheduler", scheduler_spec, error)) from None


def _refused(key: str, spec: dict[str, Any], error: BaseException) -> str:
    """The paragraph for an optimizer or scheduler that refused its arguments."""
    return (f"--{key} {spec['class_path']} refused its arguments: "
            f"{first_line(innermost(error))}. Fix the value (--{key}.<argument> on the command "
            f"line, or {key}.init_args in the config).")


def with_trial_lengths(lr_scheduler: Any, optimizer: torch.optim.Optimizer,
                       stand_in: int = 1000) -> dict[str, Any] | None:
    """The ``lr_scheduler`` config value with ``stand_in`` for the lengths the fit will set,
    so that it can be built once before the fit, to report a value its constructor refuses."""
    spec = class_spec(lr_scheduler)
    if spec is None:
        return None
    scheduler_class = _import(spec["class_path"])
    args = spec["init_args"]
    if issubclass(scheduler_class, OneCycleLR) and args.get("max_lr") is None:
        args["max_lr"] = [group["lr"] for group in optimizer.param_groups]
    key = length_argument(scheduler_class)
    if key is not None and args.get(key) is None and not (
            issubclass(scheduler_class, OneCycleLR) and args.get("epochs")):
        args[key] = stand_in
    return spec


def check_restored_schedule(trainer: Trainer, interval: Interval, lr_scheduler: Any = None) -> None:
    """Refuse to resume a schedule whose length, restored from a checkpoint, is not this
    fit's where the fit sets it (``OneCycleLR`` always, the others when ``lr_scheduler``, the
    config's choice, leaves the length out): a longer fit would end inside a ``OneCycleLR``'s
    cycle or fail past its end, and hold another schedule's final rate (``LinearLR`` to 0:
    no training at all) for the rest of the fit."""
    spec = class_spec(lr_scheduler)
    chosen = spec["init_args"] if spec else {}
    for config in trainer.lr_scheduler_configs:
        scheduler = config.scheduler
        key = length_argument(type(scheduler))
        if key is None or scheduler.last_epoch <= 0:
            continue
        if not isinstance(scheduler, OneCycleLR) and chosen.get(key) is not None:
            continue  # a length the config set: checked against the fit when it was built
        length, needed = getattr(scheduler, key), fit_length(trainer, interval)
        if length != needed:
            raise UserError(
                f"The checkpoint's {type(scheduler).__name__} schedule is "
                f"{count(length, interval)} long, but this fit takes {count(needed, interval)}. Resume with the settings the run started "
                f"with (its config.yaml), or start a new fit from the checkpoint's weights "
                f"without resuming its schedule.")


def count(length: int, interval: Interval) -> str:
    """``1 epoch``, ``240 optimizer steps``: a length in the scheduler's unit."""
    unit = "optimizer step" if interval == "step" else "epoch"
    return f"{length} {unit}{'' if length == 1 else 's'}"


def _import(class_path: str) -> type:
    module, _, name = class_path.rpartition(".")
    return getattr(__import__(module, fromlist=[name]), name)
