"""``serve``: a deployed model over HTTP with LitServe, from a checkpoint or an ONNX file.

Endpoints: ``POST /predict`` (an image as a multipart ``file`` field or base64 JSON
``{"image": ...}``; vectors as ``{"inputs": [...]}``), answered with ``predicted_class``,
``probability`` and ``probabilities`` (every class by name): the columns of ``predict``'s
``predictions.csv``. ``GET /health`` (LitServe's) answers ``ok`` once the model is loaded,
without a key. Keys and bad inputs are checked at the door (:mod:`netscope.deploy.gate`).
LitServe groups requests that arrive within ``batch_timeout`` seconds into one batch of up
to ``max_batch_size``.
"""

import logging
import os
import signal
import warnings
from typing import Any, Literal

import litserve
import numpy as np
import torch
from PIL import Image

from netscope.core.compat import quiet_lit_server
from netscope.deploy.decode import from_wire
from netscope.deploy.export import INPUT_NAME
from netscope.deploy.gate import InputGate
from netscope.deploy.graph import DeployedModel
from netscope.deploy.parity import onnx_session
from netscope.deploy.spec import InputSpec

Backend = Literal["torch", "onnx"]
API_PATH = "/predict"
HEALTH_PATH = "/health"


class NetscopeAPI(litserve.LitAPI):
    """The inference worker: decoded inputs in, one answer per request out.

    Args:
        spec: what the model takes and returns.
        model: the PyTorch model to serve, or None to serve ``onnx_path`` with onnxruntime.
        onnx_path: the exported file (when ``model`` is None).
        threads: intra-op threads of the worker (0: the library's default).
    """

    def __init__(self, spec: InputSpec, model: DeployedModel | None = None, onnx_path: str | None = None,
                 threads: int = 0, max_batch_size: int = 1, batch_timeout: float = 0.0) -> None:
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout, api_path=API_PATH)
        self.input_spec = spec
        self.model = model
        self.onnx_path = onnx_path
        self.threads = threads

    def setup(self, device: str) -> None:
        if self.model is None:
            session = onnx_session(self.onnx_path, self.threads)
            self.run = lambda batch: session.run(None, {INPUT_NAME: batch})[0]
            return
        if self.threads:
            torch.set_num_threads(self.threads)
        model = self.model

        def run(batch: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return model(torch.from_numpy(batch)).numpy()
        self.run = run

    def authorize(self) -> None:
        """Accept every request LitServe sees: the gate has checked the key already, before
        reading the body. (LitServe's own check, on ``LIT_SERVER_API_KEY``, runs after the
        middlewares, so after the decode, and guards ``/health`` too; defining this LitAPI
        hook turns it off.)"""

    def decode_request(self, request: dict) -> np.ndarray:
        return from_wire(request)  # the gate has checked and decoded it

    def batch(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.stack(inputs)

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        single = inputs.ndim == len(self.input_spec.shape)  # max_batch_size 1: no batch() call
        outputs = self.run(np.ascontiguousarray(inputs[None] if single else inputs))
        return outputs[0] if single else outputs

    def unbatch(self, outputs: np.ndarray) -> list[np.ndarray]:
        return list(outputs)

    def encode_response(self, output: np.ndarray) -> dict[str, Any]:
        values = [float(v) for v in np.asarray(output, dtype=np.float64).reshape(-1)]
        names = self.input_spec.class_names
        if self.input_spec.task == "regression":
            return {"outputs": values}
        best = int(np.argmax(values))
        return {"predicted_class": names[best], "probability": values[best],
                "probabilities": dict(zip(names, values))}


def run_server(api: NetscopeAPI, host: str, port: int, max_request_mb: float, workers: int = 1,
               max_pixels: int | None = None, api_key: str | None = None) -> None:
    """Serve ``api`` on ``host:port`` until SIGINT or SIGTERM, then stop the workers.

    ``max_pixels`` caps an image's size (413 before decoding), ``api_key`` is required on
    every request but ``/health``; one image is decoded at a time per inference worker.
    """
    # The pixel cap refuses large images itself, with the server's own 413; PIL's warning
    # for images over its limit would only fill the log of a server under attack.
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    # Likewise python-multipart logs a warning for each body it cannot parse, before the
    # gate answers it with 400: one log line per request of a flood. (Its logger has the
    # package's name: python_multipart, or multipart in older versions.)
    for name in ("python_multipart", "multipart"):
        logging.getLogger(name).setLevel(logging.ERROR)
    server = quiet_lit_server()(
        api, accelerator="cpu", devices=1, workers_per_device=workers, timeout=60,
        healthcheck_path=HEALTH_PATH,
        middlewares=[(InputGate, {"path": API_PATH, "spec": api.input_spec,
                                  "max_bytes": int(max_request_mb * 2**20), "max_pixels": max_pixels,
                                  "decode_slots": workers, "api_key": api_key,
                                  "health_path": HEALTH_PATH})],
    )
    # LitServe shuts down gracefully on KeyboardInterrupt; make SIGTERM (docker stop,
    # systemd, kill) take the same path instead of killing the parent and orphaning workers.
    owner = os.getpid()

    def interrupt(signum: int, frame: Any) -> None:
        if os.getpid() != owner:  # a forked HTTP process inherited this: die as it would have
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        server.run(host=host, port=port, generate_client_file=False, num_api_servers=1,
                   log_level="warning")
    except KeyboardInterrupt:
        pass  # stopped while starting, before LitServe's own handler was in place
    finally:
        signal.signal(signal.SIGTERM, previous)
        # Workers that were still starting are not in LitServe's shutdown: stop them here,
        # or the interpreter would wait for them forever at exit.
        for worker in getattr(server, "inference_workers", None) or []:
            if worker.is_alive():
                worker.terminate()
                worker.join(timeout=10)
    print("server stopped", flush=True)

