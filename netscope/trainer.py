"""netscope's Trainer: Lightning's, plus the commands ``check``, ``export`` and ``serve``.

LightningCLI turns each Trainer method named in ``NetscopeCLI.subcommands()`` into a
subcommand whose options are the method's own arguments (as ``fit`` gets ``--ckpt_path``),
so the extra commands take the same ``--config`` and overrides as ``fit`` with no parser of
their own. Each method only hands over to the module that does the work.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from lightning.pytorch import LightningDataModule, LightningModule, Trainer

from netscope.models.tta import TTAMode

FailOn = Literal["error", "warning", "info", "never"]


class NetscopeTrainer(Trainer):
    """A Lightning Trainer with netscope's extra commands.

    The first line of each command's docstring is that command's line in
    ``python main.py --help``; ``fit``, ``validate`` and ``test`` are Lightning's, restated
    here only for that line and their options' descriptions (jsonargparse reads an
    override's own docstring, not that of the Lightning method it replaces).
    """

    def fit(self, model: LightningModule, train_dataloaders: Any = None,
            val_dataloaders: Any = None, datamodule: LightningDataModule | None = None,
            ckpt_path: str | Path | None = None, weights_only: bool | None = None) -> None:
        """Train and validate, then test the best checkpoint.

        Lightning's ``fit``; the command line then tests the best checkpoint on the test
        split (``--test_after_fit false``: not).

        Args:
            ckpt_path: a checkpoint to resume from: ``runs/<run>/checkpoints/last.ckpt``
                continues that run (its directory, history and W&B run).
            weights_only: load the checkpoint with ``torch.load(weights_only=True)``
                (default: Lightning's choice).
        """
        super().fit(model, train_dataloaders, val_dataloaders, datamodule, ckpt_path,
                    weights_only)

    def validate(self, model: LightningModule | None = None, dataloaders: Any = None,
                 ckpt_path: str | Path | None = None, verbose: bool = True,
                 datamodule: LightningDataModule | None = None,
                 weights_only: bool | None = None) -> list[Mapping[str, float]]:
        """Evaluate a checkpoint on the validation split.

        Args:
            ckpt_path: the checkpoint to evaluate (``runs/<run>/checkpoints/<file>.ckpt``).
            verbose: print the metrics as a table.
            weights_only: load the checkpoint with ``torch.load(weights_only=True)``
                (default: Lightning's choice).
        """
        return super().validate(model, dataloaders, ckpt_path, verbose, datamodule, weights_only)

    def test(self, model: LightningModule | None = None, dataloaders: Any = None,
             ckpt_path: str | Path | None = None, verbose: bool = True,
             datamodule: LightningDataModule | None = None,
             weights_only: bool | None = None) -> list[Mapping[str, float]]:
        """Evaluate a checkpoint on the test split.

        Args:
            ckpt_path: the checkpoint to evaluate (``runs/<run>/checkpoints/<file>.ckpt``).
            verbose: print the metrics as a table.
            weights_only: load the checkpoint with ``torch.load(weights_only=True)``
                (default: Lightning's choice).
        """
        return super().test(model, dataloaders, ckpt_path, verbose, datamodule, weights_only)

    def predict(self, model: LightningModule | None = None, dataloaders: Any = None,
                datamodule: LightningDataModule | None = None,
                return_predictions: bool | None = None, ckpt_path: str | None = None,
                weights_only: bool | None = None, untrained: bool = False) -> Any:
        """Predict with a checkpoint: predictions.csv.

        Lightning's ``predict``, with the command line's ``--untrained`` option; the
        predictions go to ``predictions.csv`` in the run directory (``PredictionWriter``).

        Args:
            return_predictions: keep the predictions in memory and return them (default:
                Lightning's choice).
            ckpt_path: the checkpoint to predict with (``runs/<run>/checkpoints/<file>.ckpt``).
            weights_only: load the checkpoint with ``torch.load(weights_only=True)``
                (default: Lightning's choice).
            untrained: predict with the model's initial, untrained weights on purpose. The
                command line (``NetscopeCLI``) refuses ``predict`` without ``--ckpt_path``
                unless this is set; called from Python, it changes nothing.
        """
        del untrained  # read by the CLI before the run starts
        return super().predict(model, dataloaders, datamodule, return_predictions, ckpt_path,
                               weights_only)

    def check(self, model: LightningModule, datamodule: LightningDataModule | None = None,
              fail_on: FailOn = "error") -> None:
        """The doctor's pre-flight check alone, no training.

        Print the findings of the doctor's pre-flight check. A fit that stops when training would start: the model, data, optimizer and LR
        schedule are set up exactly as ``fit`` sets them up, the config's Doctor (or a
        default one) checks one training batch, and no optimizer step is taken. The
        findings go to the console and ``metrics.json``, the plot to
        ``signal_propagation.png``. The command line builds the trainer for it
        (:func:`netscope.assembly.check_mode`); called from Python, this is a fit.

        Args:
            fail_on: exit with status 1 when a finding of this severity or graver is
                found (``never``: exit 0 whatever is found).
        """
        del fail_on  # read by the command line when the check is over
        self.fit(model, datamodule=datamodule)

    def export(self, model: LightningModule, datamodule: LightningDataModule | None = None,
               ckpt_path: str | None = None, tta: TTAMode | None = None) -> None:
        """Export a checkpoint to ONNX (model.onnx).

        ``model.onnx`` goes to the run directory, with the preprocessing inside, checked
        against PyTorch on the first 1000 test inputs (``parity.json``).

        Args:
            ckpt_path: the checkpoint to export.
            tta: test-time augmentation built into the graph (default: the model's ``tta``).
        """
        from netscope.deploy import commands as deploy  # litserve/onnx load only for these commands

        deploy.export(model, datamodule, ckpt_path, self.default_root_dir, tta)

    def serve(self, model: LightningModule, datamodule: LightningDataModule | None = None,
              ckpt_path: str | None = None, onnx: str | None = None, port: int = 8000,
              host: str = "127.0.0.1", max_batch_size: int = 8, batch_timeout: float = 0.005,
              max_request_mb: float = 16.0, workers: int = 1, threads: int = 0,
              tta: TTAMode | None = None, max_pixels: int = 4096 * 4096,
              api_key_env: str | None = None) -> None:
        """Serve a checkpoint or model.onnx over HTTP.

        A checkpoint is served with PyTorch, an exported ``model.onnx`` with onnxruntime.

        Args:
            ckpt_path: the checkpoint to serve (unless ``onnx`` is given).
            onnx: a ``model.onnx`` written by ``export``, served with onnxruntime instead.
            port: the TCP port to listen on.
            host: the interface: ``127.0.0.1`` (this machine only, the default) or ``0.0.0.0``
                (every network; then set ``api_key_env`` or put a reverse proxy in front).
            max_batch_size: requests answered by one forward pass at most (1: no batching).
            batch_timeout: seconds to wait for more requests to fill a batch.
            max_request_mb: larger request bodies are refused (413).
            workers: inference worker processes.
            threads: compute threads per worker (0: the library's default).
            tta: test-time augmentation for a checkpoint (default: the model's ``tta``).
            max_pixels: larger images (width x height) are refused (413) before decoding.
            api_key_env: the environment variable holding the API key every request but
                ``/health`` must carry (``X-API-Key`` or ``Authorization: Bearer``);
                LitServe's ``LIT_SERVER_API_KEY`` is used when this is not given.
        """
        from netscope.deploy import commands as deploy  # litserve/onnx load only for these commands

        deploy.serve(model, datamodule, ckpt_path, onnx, host, port, max_batch_size, batch_timeout,
                     max_request_mb, workers, threads, tta, max_pixels, api_key_env)
