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
        """Run the doctor's pre-flight check alone (no training) and print its findings."""
        raise UserError("`check` is being built (issue 12).")

    def export(self, model: LightningModule, datamodule: LightningDataModule | None = None,
               ckpt_path: str | None = None) -> None:
        """Export a checkpoint to ``model.onnx`` in the run directory."""
        raise UserError("`export` is being built (issue 15).")

    def serve(self, model: LightningModule, datamodule: LightningDataModule | None = None,
              ckpt_path: str | None = None, port: int = 8000) -> None:
        """Serve a checkpoint or an exported model over HTTP."""
        raise UserError("`serve` is being built (issue 15).")
