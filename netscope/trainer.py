"""netscope's Trainer: Lightning's, plus the commands ``check``, ``export`` and ``serve``.

LightningCLI turns each Trainer method named in ``NetscopeCLI.subcommands()`` into a
subcommand whose options are the method's own arguments (as ``fit`` gets ``--ckpt_path``),
so the extra commands take the same ``--config`` and overrides as ``fit`` with no parser of
their own. Each method only hands over to the module that does the work.
"""

from lightning.pytorch import LightningDataModule, LightningModule, Trainer

from core.errors import UserError


class NetscopeTrainer(Trainer):
    """A Lightning Trainer with netscope's extra commands."""

    def check(self, model: LightningModule, datamodule: LightningDataModule | None = None) -> None:
        """Run the doctor's pre-flight check alone (no training) and print its findings.

        A fit that stops when training would start: the model, data, optimizer and LR
        schedule are set up exactly as ``fit`` sets them up, the config's ``callbacks.Doctor``
        (or a default one) checks one training batch, and no optimizer step is taken. The
        findings go to the console and ``metrics.json``, the plot to
        ``signal_propagation.png``.
        """
        from callbacks.doctor import Doctor  # the trainer is above the callbacks

        doctor = next((c for c in self.callbacks if isinstance(c, Doctor)), None)
        if doctor is None:
            doctor = Doctor()
            self.callbacks.append(doctor)
        doctor.check_only = True
        self.num_sanity_val_steps = 0  # nothing to validate: no step is taken
        self.fit(model, datamodule=datamodule)

    def export(self, model: LightningModule, datamodule: LightningDataModule | None = None,
               ckpt_path: str | None = None) -> None:
        """Export a checkpoint to ``model.onnx`` in the run directory."""
        raise UserError("`export` is being built (issue 15).")

    def serve(self, model: LightningModule, datamodule: LightningDataModule | None = None,
              ckpt_path: str | None = None, port: int = 8000) -> None:
        """Serve a checkpoint or an exported model over HTTP."""
        raise UserError("`serve` is being built (issue 15).")
