"""netscope's Trainer: Lightning's, plus the commands ``check``, ``export`` and ``serve``.

LightningCLI turns each Trainer method named in ``NetscopeCLI.subcommands()`` into a
subcommand whose options are the method's own arguments (as ``fit`` gets ``--ckpt_path``),
so the extra commands take the same ``--config`` and overrides as ``fit`` with no parser of
their own. Each method only hands over to the module that does the work.
"""

from typing import Any

from lightning.pytorch import LightningDataModule, LightningModule, Trainer

from core.errors import UserError


class NetscopeTrainer(Trainer):
    """A Lightning Trainer with netscope's extra commands."""

    def predict(self, model: LightningModule | None = None, dataloaders: Any = None,
                datamodule: LightningDataModule | None = None,
                return_predictions: bool | None = None, ckpt_path: str | None = None,
                weights_only: bool | None = None, untrained: bool = False) -> Any:
        """Lightning's ``predict``, with the command line's ``--untrained`` option.

        Args:
            untrained: predict with the model's initial, untrained weights on purpose. The
                command line (``NetscopeCLI``) refuses ``predict`` without ``--ckpt_path``
                unless this is set; called from Python, it changes nothing.
        """
        del untrained  # read by the CLI before the run starts
        return super().predict(model, dataloaders, datamodule, return_predictions, ckpt_path,
                               weights_only)

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
