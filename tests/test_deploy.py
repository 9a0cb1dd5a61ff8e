"""Deploy end to end with real parts: a tiny satellite-config ConvNet is trained, ``predict``
writes its CSV, ``export`` writes ``model.onnx``; the ONNX file is checked against the
checkpoint by hand, and the real server (``python main.py serve`` in a subprocess, on a
free loopback port) is asked with ``requests``: its answers equal ``predict``'s rows, every
bad input gets a 4xx and the next good request still succeeds, and SIGTERM stops it."""

import base64
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import requests
import torch
from PIL import Image

from netscope.datamodules.image_cache import read_image
from netscope.models import ConvNet
from tests.helpers import CONFIGS, SHARED_DATA, requires_shared, run
from tests.image_folders import make_class_folder, make_predict_folder

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["alpha", "beta", "gamma"]
STARTUP_S = 180  # the server imports torch in two processes; a shared 2-core machine is slow


def satellite(root: Path) -> list[str]:
    """The satellite config on a tiny folder, in float32 (the precision the export has)."""
    return ["--config", str(CONFIGS / "satellite.yaml"), "--data.init_args.data_dir", str(root),
            "--data.init_args.image_size", "16", "--data.init_args.batch_size", "8",
            "--trainer.max_epochs", "1", "--lr_scheduler.init_args.total_iters", "1",
            "--trainer.precision", "32-true", "--trainer.enable_model_summary", "false",
            "--trainer.logger", "false"]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A trained checkpoint, predict's CSV for a folder of new images, and the export's run dir."""
    tmp = tmp_path_factory.mktemp("deploy")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NETSCOPE_CACHE_DIR", str(tmp / "cache"))
        patch.chdir(tmp)
        torch.manual_seed(0)
        root = make_class_folder(tmp / "shapes", per_class=12, corrupt=False)
        new = make_predict_folder(tmp / "new")
        (new / "broken.png").unlink()  # predict's own handling of broken files is tested elsewhere
        args = satellite(root)
        fit_dir = run("fit", *args, root=tmp / "runs")
        checkpoint = next((fit_dir / "checkpoints").glob("*.ckpt"))
        predict_dir = run("predict", *args, "--ckpt_path", str(checkpoint),
                          "--data.init_args.predict_dir", str(new), root=tmp / "runs")
        export_dir = run("export", *args, "--ckpt_path", str(checkpoint), root=tmp / "runs")
    with open(predict_dir / "predictions.csv", newline="") as file:
        rows = {Path(row["file"]).name: row for row in csv.DictReader(file)}
    return {"root": root, "new": new, "args": args, "checkpoint": checkpoint, "rows": rows,
            "export_dir": export_dir, "tmp": tmp}


def test_export_matches_the_checkpoint(deployed):
    """model.onnx takes uint8 images of any batch size, carries its classes and input spec,
    and gives the probabilities of the checkpoint on images normalized as in training."""
    export_dir = deployed["export_dir"]
    onnx_path = export_dir / "model.onnx"
    parity = json.loads((export_dir / "parity.json").read_text())
    assert parity["passed"] and parity["count"] == 6 and parity["max_abs_diff"] <= 1e-4
    props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert json.loads(props["class_names"]) == CLASSES
    spec = json.loads(props["netscope_input_spec"])
    assert spec["kind"] == "image" and spec["shape"] == [3, 16, 16]

    # By hand, independently of netscope.deploy: the checkpoint's model and normalization.
    saved = torch.load(deployed["checkpoint"], weights_only=True)
    state = saved["ImageFolderDataModule"]
    assert spec["mean"] == pytest.approx(state["mean"]) and spec["std"] == pytest.approx(state["std"])
    mean, std = torch.tensor(state["mean"]).view(3, 1, 1), torch.tensor(state["std"]).view(3, 1, 1)
    model = ConvNet.load_from_checkpoint(deployed["checkpoint"]).eval().float()
    files = sorted((deployed["root"]).rglob("*.*g"))[:7]
    images = np.stack([read_image(f, 16).transpose(2, 0, 1) for f in files])
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(uint8)"
    for batch in (images[:1], images):  # the batch dimension is dynamic
        got = session.run(None, {"inputs": batch})[0]
        with torch.no_grad():
            expected = model((torch.from_numpy(batch).float() / 255 - mean) / std).softmax(-1).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``python main.py serve ...`` as a subprocess on a free loopback port."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.log = open(cwd / f"serve-{self.port}.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "main.py"), "serve", *args, "--port", str(self.port)],
            cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the server exited: {self.output()}"
            try:
                if requests.get(f"{self.url}/health", timeout=2).text == "ok":
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"the server did not become healthy in {STARTUP_S} s: {self.output()}")

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return Path(self.log.name).read_text()[-3000:]

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send ``signum``; the exit status (killed with its children if it hangs)."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()
        return self.process.returncode


def post_file(url: str, path: Path, field: str = "file") -> requests.Response:
    with open(path, "rb") as file:
        return requests.post(f"{url}/predict", files={field: (path.name, file)}, timeout=30)


def assert_same_as_predict(answer: dict, row: dict) -> None:
    """A served answer equals predict's CSV row (which rounds to 6 decimals)."""
    assert answer["predicted_class"] == row["predicted_class"]
    assert answer["probability"] == pytest.approx(float(row["probability"]), abs=2e-6)
    assert list(answer["probabilities"]) == CLASSES
    for name in CLASSES:
        assert answer["probabilities"][name] == pytest.approx(float(row[f"p_{name}"]), abs=2e-6)


def bad_inputs(tmp: Path, url: str) -> dict[str, requests.Response]:
    """Each input the server must refuse, sent once."""
    good = next(tmp.glob("new/new_alpha.png")).read_bytes()
    jpeg = next((tmp / "shapes" / "alpha").glob("*.jpg")).read_bytes()
    big = tmp / "big.png"  # ~27 MB of noise: over the 16 MB default limit
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (3000, 3000, 3), dtype=np.uint8)).save(big)
    predict = f"{url}/predict"
    return {
        "not an image": requests.post(predict, files={"file": ("notes.txt", b"just text")}, timeout=30),
        "empty body": requests.post(predict, data=b"", headers={"Content-Type": "application/json"}, timeout=30),
        "too large": post_file(url, big),
        "wrong content type": requests.post(predict, data=good, headers={"Content-Type": "image/png"}, timeout=30),
        "truncated jpeg": requests.post(predict, files={"file": ("cut.jpg", jpeg[: len(jpeg) // 2])}, timeout=30),
        "bad base64": requests.post(predict, json={"image": "not base64!"}, timeout=30),
        "json without image": requests.post(predict, json={"picture": "x"}, timeout=30),
    }


def test_served_onnx_answers_as_predict_refuses_bad_input_and_stops_on_sigterm(deployed):
    onnx_path = deployed["export_dir"] / "model.onnx"
    server = Server([*deployed["args"], "--onnx", str(onnx_path), "--max_batch_size", "4",
                     "--batch_timeout", "0.05"], cwd=deployed["tmp"])
    try:
        server.wait_ready()
        good = deployed["new"] / "new_beta.png"
        # Multipart uploads and base64 JSON both answer as predict's CSV row for that file.
        for path in sorted(deployed["new"].rglob("*.png")):
            response = post_file(server.url, path)
            assert response.status_code == 200, response.text
            assert_same_as_predict(response.json(), deployed["rows"][path.name])
        encoded = base64.b64encode(good.read_bytes()).decode()
        response = requests.post(f"{server.url}/predict", json={"image": encoded}, timeout=30)
        assert_same_as_predict(response.json(), deployed["rows"][good.name])

        # Concurrent requests are batched (max 4, 50 ms) and each gets its own answer.
        from concurrent.futures import ThreadPoolExecutor
        paths = sorted(deployed["new"].rglob("*.png")) * 3
        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(lambda p: post_file(server.url, p).json(), paths))
        for path, answer in zip(paths, answers):
            assert_same_as_predict(answer, deployed["rows"][path.name])

        # Every bad input: a 4xx with a one-line reason, then a good request still succeeds.
        expected = {"not an image": 400, "empty body": 400, "too large": 413, "wrong content type": 415,
                    "truncated jpeg": 400, "bad base64": 400, "json without image": 400}
        for name, response in bad_inputs(deployed["tmp"], server.url).items():
            assert response.status_code == expected[name], (name, response.status_code, response.text)
            reason = response.json()["detail"]
            assert reason and "\n" not in reason, (name, reason)
            after = post_file(server.url, good)
            assert after.status_code == 200, (name, after.text)
            assert_same_as_predict(after.json(), deployed["rows"][good.name])
    finally:
        status = server.stop(signal.SIGTERM)
    assert status == 0, server.output()
    assert "server stopped" in server.output()
    with pytest.raises(requests.ConnectionError):  # nothing is left listening
        requests.get(f"{server.url}/health", timeout=2)


@pytest.mark.slow
def test_served_checkpoint_answers_as_predict_and_stops_on_sigint(deployed):
    """The PyTorch path, one request at a time (no batching)."""
    server = Server([*deployed["args"], "--ckpt_path", str(deployed["checkpoint"]),
                     "--max_batch_size", "1"], cwd=deployed["tmp"])
    try:
        server.wait_ready()
        for path in sorted(deployed["new"].rglob("*.png")):
            response = post_file(server.url, path)
            assert response.status_code == 200, response.text
            assert_same_as_predict(response.json(), deployed["rows"][path.name])
        assert post_file(server.url, deployed["new"] / "readme.txt").status_code == 400
    finally:
        status = server.stop(signal.SIGINT)
    assert status == 0, server.output()


def test_xor_exports_vector_inputs_and_refuses_image_tta(tmp_path):
    """An MLP on XOR: float32 2-vectors in, the two columns of predict's CSV ([1 - p, p]) out."""
    xor = ["--config", str(CONFIGS / "xor.yaml"), "--trainer.max_epochs", "3",
           "--trainer.logger", "false", "--trainer.enable_model_summary", "false"]
    fit_dir = run("fit", *xor, root=tmp_path / "runs")
    checkpoint = next((fit_dir / "checkpoints").glob("*.ckpt"))
    export_dir = run("export", *xor, "--ckpt_path", str(checkpoint), root=tmp_path / "runs")
    assert json.loads((export_dir / "parity.json").read_text())["count"] == 4
    session = onnxruntime.InferenceSession(str(export_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(float)"
    points = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    got = session.run(None, {"inputs": points})[0]
    from netscope.models import MLP
    with torch.no_grad():
        positive = MLP.load_from_checkpoint(checkpoint).eval()(torch.from_numpy(points)).sigmoid()
    np.testing.assert_allclose(got, torch.cat([1 - positive, positive], 1).numpy(), atol=1e-6)

    with pytest.raises(SystemExit) as stopped:  # flips and shifts need images
        run("export", *xor, "--ckpt_path", str(checkpoint), "--tta", "flip", root=tmp_path / "runs")
    assert stopped.value.code == 1


@pytest.mark.slow
@requires_shared("mnist")
def test_grey_mnist_resnet18_exports_with_test_time_augmentation(tmp_path):
    """TorchvisionNet on 1-channel 28x28 images, six TTA views in the graph, 1000 real test images."""
    mnist = ["--model", "netscope.models.TorchvisionNet", "--data", "netscope.datamodules.MNISTDataModule",
             "--data.init_args.data_dir", str(SHARED_DATA / "mnist"), "--optimizer", "torch.optim.Adam",
             "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3",
             "--trainer.limit_val_batches", "1", "--test_after_fit", "false",
             "--trainer.logger", "false", "--trainer.enable_model_summary", "false"]
    fit_dir = run("fit", *mnist, root=tmp_path / "runs")
    checkpoint = next((fit_dir / "checkpoints").glob("*.ckpt"))
    export_dir = run("export", *mnist, "--ckpt_path", str(checkpoint), "--tta", "flip_translate",
                     root=tmp_path / "runs")
    parity = json.loads((export_dir / "parity.json").read_text())
    assert parity["passed"] and parity["count"] == 1000
    spec = json.loads({p.key: p.value for p in onnx.load(str(export_dir / "model.onnx")).metadata_props}
                      ["netscope_input_spec"])
    assert spec["shape"] == [1, 28, 28] and spec["tta"] == "flip_translate"
    assert spec["mean"] == pytest.approx([0.1307]) and spec["std"] == pytest.approx([0.3081])


def test_export_and_serve_explain_a_missing_checkpoint_or_a_file_that_is_not_onnx(tmp_path, capsys):
    root = make_class_folder(tmp_path / "shapes", per_class=2, corrupt=False)
    not_onnx = tmp_path / "model.onnx"
    not_onnx.write_text("not a model")
    for command, extra, message in (("export", [], "--ckpt_path"),
                                    ("serve", ["--onnx", str(not_onnx)], "is not a model.onnx")):
        with pytest.raises(SystemExit) as stopped:
            run(command, *satellite(root), *extra, root=tmp_path / "runs")
        assert stopped.value.code == 1
        assert message in capsys.readouterr().err


def test_served_checkpoint_checks_the_key_first_and_refuses_hostile_requests(deployed, monkeypatch):
    """The whole server (LitServe, the model): /health without a key, the key before the
    body, the pixel cap before decoding, malformed multipart and wrong-typed JSON as 4xx.
    LitServe's own LIT_SERVER_API_KEY is set too: its check (which would lock /health and
    come after the decode) is replaced by netscope's, so only --api_key_env's key counts."""
    from tests.test_hardening import exchange, multipart, png_header, request

    monkeypatch.setenv("NETSCOPE_TEST_KEY", "k3y")
    monkeypatch.setenv("LIT_SERVER_API_KEY", "litserve-key")
    server = Server([*deployed["args"], "--ckpt_path", str(deployed["checkpoint"]), "--max_batch_size", "1",
                     "--api_key_env", "NETSCOPE_TEST_KEY", "--max_pixels", "4096"], cwd=deployed["tmp"])
    try:
        server.wait_ready()  # /health answers without a key
        good = deployed["new"] / "new_beta.png"
        assert post_file(server.url, good).status_code == 401
        with open(good, "rb") as file:
            response = requests.post(f"{server.url}/predict", files={"file": file},
                                     headers={"X-API-Key": "k3y"}, timeout=30)
        assert response.status_code == 200, response.text
        assert_same_as_predict(response.json(), deployed["rows"][good.name])
        assert requests.get(f"{server.url}/info", headers={"X-API-Key": "litserve-key"}, timeout=30).status_code == 401

        port = server.port
        status, headers, _ = exchange(port, request(None, key=None, length=2**20), timeout=20)
        assert status == 401 and headers["connection"] == "close"  # answered without the body
        status, _, body = exchange(port, request(multipart(png_header(9000, 9000)), key="k3y"))
        assert status == 413 and "9000x9000" in json.loads(body)["detail"]
        for raw in (request(multipart(b"abc"), "multipart/form-data", key="k3y"),  # no boundary: was a 500
                    request(multipart(good.read_bytes(), boundary="other"), key="k3y"),
                    request(b'{"image": 5}', "application/json", key="k3y"),
                    request(b"[" * 100_000, "application/json", key="k3y")):
            status, _, body = exchange(port, raw)
            assert status == 400, (raw[:80], status, body)
        with open(good, "rb") as file:  # and it goes on serving
            assert requests.post(f"{server.url}/predict", files={"file": file}, headers={"X-API-Key": "k3y"},
                                 timeout=30).status_code == 200
    finally:
        status = server.stop(signal.SIGTERM)
    assert status == 0, server.output()
    assert "Traceback" not in server.output(), server.output()
    assert "Expected boundary" not in server.output()  # a log line per malformed body, before
