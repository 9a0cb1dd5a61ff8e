"""What ``python main.py export`` and ``python main.py serve`` do, given the model and data the
CLI built from the config (``NetscopeTrainer.export``/``serve`` hand over to these)."""

import os
import sys
from pathlib import Path

import torch
from google.protobuf.message import DecodeError
from lightning.pytorch import LightningDataModule, LightningModule

from netscope.core.errors import UserError
from netscope.core.rundir import RunDir
from netscope.deploy.checkpoint import restore
from netscope.deploy.export import export_onnx, read_spec
from netscope.deploy.graph import DeployedModel, deployed_model
from netscope.deploy.parity import Parity, check_parity
from netscope.deploy.serve import NetscopeAPI, run_server
from netscope.deploy.spec import InputSpec, input_spec
from netscope.models.tta import TTAMode

PARITY_COUNT = 1000
#: The interfaces LitServe binds: this machine only, or every network (IPv4, IPv6).
HOSTS = ("127.0.0.1", "0.0.0.0", "::")
#: LitServe's own key variable: honoured as if named by --api_key_env.
LITSERVE_KEY_ENV = "LIT_SERVER_API_KEY"


def prepare(model: LightningModule, datamodule: LightningDataModule | None, ckpt_path: str | None,
            tta: TTAMode | None) -> DeployedModel:
    """The checkpoint's model with preprocessing and head; ``tta`` None keeps the model's own."""
    restore(model, datamodule, ckpt_path)
    tta = tta or model.hparams.get("tta", "none")
    if tta != "none" and len(model.input_shape) < 2:
        raise UserError(f"Test-time augmentation (tta={tta}) mirrors and shifts images, but this "
                        f"model's inputs have shape {tuple(model.input_shape)}. Use --tta none.")
    return deployed_model(model, input_spec(model, datamodule, tta))


def export(model: LightningModule, datamodule: LightningDataModule | None, ckpt_path: str | None,
           run_dir: str | Path, tta: TTAMode | None = None) -> tuple[Path, Parity]:
    """Export to ``<run_dir>/model.onnx``, check parity on the first test inputs (written to
    ``parity.json``), print both; a failed check is an error (the file stays for inspection)."""
    deployed = prepare(model, datamodule, ckpt_path, tta)
    path = export_onnx(deployed, RunDir(run_dir).file(RunDir.ONNX))
    parity = check_parity(deployed, path, parity_inputs(datamodule, deployed.spec))
    parity.write(run_dir)
    print(parity.line())
    print(path)
    if not parity.passed:
        raise UserError(f"The exported graph does not match PyTorch: {parity.line()}. Details in "
                        f"{RunDir(run_dir).file(RunDir.PARITY)}; please report it with the config used.")
    return path, parity


def parity_inputs(datamodule: LightningDataModule | None, spec: InputSpec,
                  count: int = PARITY_COUNT) -> torch.Tensor:
    """The first ``count`` test inputs as a client sends them (validation when there is no test split)."""
    splits = getattr(datamodule, "splits", None)
    if splits is None or "test" not in splits:
        datamodule.setup("test")
        splits = datamodule.splits
    inputs = splits["test" if "test" in splits else "val"][0][:count].cpu()
    return inputs if spec.kind == "image" else inputs.float()


def api_key(env_name: str | None) -> str | None:
    """The key clients must send: the value of ``env_name`` (or of LitServe's own
    ``LIT_SERVER_API_KEY``); None when neither is given. Never taken from the command line,
    where it would show in ``ps``, the shell's history and the run's ``config.yaml``."""
    if env_name:
        key = os.environ.get(env_name, "")
        if not key:
            raise UserError(f"--api_key_env {env_name}: the environment variable {env_name} is not set "
                            f"or empty. Set it to the key clients must send, e.g. "
                            f"export {env_name}=$(python -c 'import secrets; print(secrets.token_urlsafe(32))').")
        return key
    return os.environ.get(LITSERVE_KEY_ENV) or None


def serve(model: LightningModule, datamodule: LightningDataModule | None, ckpt_path: str | None,
          onnx_path: str | None, host: str, port: int, max_batch_size: int, batch_timeout: float,
          max_request_mb: float, workers: int, threads: int, tta: TTAMode | None = None,
          max_pixels: int | None = None, api_key_env: str | None = None) -> None:
    """Serve the checkpoint (PyTorch) or, with ``onnx_path``, the exported file (onnxruntime)."""
    if host not in HOSTS:
        raise UserError(f"--host {host}: serve binds 127.0.0.1 (this machine only, the default), "
                        f"0.0.0.0 or :: (every network). To serve one address among several, keep "
                        f"127.0.0.1 and put a reverse proxy in front (docs/deploy.md).")
    if max_pixels is not None and max_pixels < 1:
        raise UserError(f"--max_pixels {max_pixels}: the pixel cap must be a positive number of pixels.")
    key = api_key(api_key_env)
    if onnx_path:
        try:
            spec = read_spec(onnx_path)
        except (OSError, KeyError, DecodeError) as error:
            raise UserError(f"'{onnx_path}' is not a model.onnx written by `python main.py export` "
                            f"({type(error).__name__}). Export one, or serve the checkpoint with "
                            f"--ckpt_path.") from error
        api = NetscopeAPI(spec, onnx_path=onnx_path, threads=threads,
                          max_batch_size=max_batch_size, batch_timeout=batch_timeout)
        source = onnx_path
    else:
        deployed = prepare(model, datamodule, ckpt_path, tta)
        api = NetscopeAPI(deployed.spec, model=deployed, threads=threads,
                          max_batch_size=max_batch_size, batch_timeout=batch_timeout)
        source = ckpt_path
    print(f"serving {source} at http://{host}:{port}/predict (health: /health; batches of up to "
          f"{max_batch_size}, {batch_timeout * 1000:g} ms wait; "
          f"{'API key required' if key else 'no API key'}); Ctrl+C to stop", flush=True)
    if host != "127.0.0.1" and not key:
        print(f"warning: serving on every network interface ({host}) without an API key: anyone who "
              f"can reach this port can use the model. Set --api_key_env, or bind 127.0.0.1 behind "
              f"a reverse proxy.", file=sys.stderr, flush=True)
    run_server(api, host, port, max_request_mb, workers, max_pixels, key)

