"""The learning rate (and a scheduled momentum) as the run sees it: ``lr``, ``momentum``."""

from lightning.pytorch import LightningModule, Trainer

from netscope.callbacks.diagnostic import Diagnostic


class LearningRate(Diagnostic):
    """Log ``lr`` every ``trainer.log_every_n_steps`` (``lr/pg<i>`` per parameter group
    when there are several), and ``momentum`` (SGD's, or Adam's first beta) when a schedule
    cycles it, as ``OneCycleLR`` can.

    On by default in every command. Lightning's ``LearningRateMonitor`` does the same job
    but names the key after the optimizer (``lr-SGD``), where netscope's metric names are
    fixed (``lr``) so that studies compare runs with different optimizers on one key.
    """

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: object,
                             batch_idx: int) -> None:
        if not trainer.optimizers or not self.is_due(trainer):
            return
        groups = trainer.optimizers[0].param_groups
        cycled = any(getattr(config.scheduler, "cycle_momentum", False)
                     for config in trainer.lr_scheduler_configs)
        metrics = {}
        for index, group in enumerate(groups, start=1):
            suffix = "" if len(groups) == 1 else f"/pg{index}"
            metrics[f"lr{suffix}"] = float(group["lr"])
            if cycled:
                momentum = group.get("momentum", group.get("betas", (None,))[0])
                if momentum is not None:
                    metrics[f"momentum{suffix}"] = float(momentum)
        self.log_values(trainer, metrics)
