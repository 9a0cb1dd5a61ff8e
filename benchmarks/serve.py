"""Serving speed: requests/s and p50/p99 latency of ``python main.py serve`` over loopback HTTP,
PyTorch (the checkpoint) against onnxruntime (the exported file), with and without request
batching, at 1, 8 and 32 concurrent clients.

    python benchmarks/serve.py --ckpt_path RUN/checkpoints/X.ckpt --onnx EXPORT/model.onnx \\
        --data_dir /work/shared/data/satellite --json serve.json

Each setting starts the real server (a subprocess on a free 127.0.0.1 port), waits for
``/health``, sends ``--warmup`` requests, then, per concurrency level, ``--requests``
multipart uploads of one test image (or as many as fit in ``--seconds``) from that many
client threads, each with its own HTTP connection; then stops the server with SIGTERM. The
clients run on the same CPU as the server: on a small machine they take part of it.
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import requests  # noqa: E402

from benchmarks.common import emit, machine  # noqa: E402
from netscope.datamodules.image_cache import list_images  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = (1, 8, 32)
#: (name, serve options): batching waits up to 5 ms for up to 8 requests.
BATCHING = {"off": ["--max_batch_size", "1"],
            "on": ["--max_batch_size", "8", "--batch_timeout", "0.005"]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(serve_args: list[str], log: Path, startup_s: float, python: str = sys.executable,
                 checkout: Path = ROOT) -> tuple[subprocess.Popen, str]:
    """``python main.py serve <serve_args>`` of ``checkout`` on a free 127.0.0.1 port: the
    process and its URL, once ``/health`` answers."""
    port = free_port()
    command = [python, str(Path(checkout) / "main.py"), "serve", *serve_args, "--port", str(port)]
    process = subprocess.Popen(command, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONPATH": str(checkout)})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + startup_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited; see {log}")
        try:
            if requests.get(f"{url}/health", timeout=2).text == "ok":
                return process, url
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    stop(process)
    raise RuntimeError(f"the server did not start in {startup_s} s; see {log}")


def start(args: argparse.Namespace, source: list[str], batching: list[str], log: Path) -> tuple:
    """The server of one setting and its URL, once ``/health`` answers."""
    return start_server(["--config", str(args.config), "--data.init_args.data_dir", args.data_dir,
                         "--trainer.logger", "false", "--trainer.default_root_dir", str(args.root),
                         *source, *batching], log, args.startup_s)


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def load(url: str, image: bytes, concurrency: int, count: int, seconds: float) -> dict:
    """``count`` requests (fewer if ``seconds`` run out) from ``concurrency`` threads."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    sent = 0
    deadline = time.monotonic() + seconds

    def client() -> None:
        nonlocal sent, failures
        session = requests.Session()  # one keep-alive connection per client
        while True:
            with lock:
                if sent >= count or time.monotonic() > deadline:
                    return
                sent += 1
            began = time.perf_counter()
            response = session.post(f"{url}/predict", files={"file": ("image.jpg", image)}, timeout=60)
            elapsed = time.perf_counter() - began
            with lock:
                if response.status_code == 200:
                    latencies.append(elapsed)
                else:
                    failures += 1

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(client) for _ in range(concurrency)]:
            future.result()
    wall = time.perf_counter() - began
    latencies.sort()
    return {"requests": len(latencies), "failures": failures, "wall_s": round(wall, 3),
            "requests_per_s": round(len(latencies) / wall, 1),
            "p50_ms": round(1000 * statistics.median(latencies), 1),
            "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt_path", required=True, help="the checkpoint (served by PyTorch)")
    parser.add_argument("--onnx", required=True, help="its model.onnx (served by onnxruntime)")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "satellite.yaml")
    parser.add_argument("--data_dir", default=str(ROOT.parent / "shared" / "data" / "satellite"))
    parser.add_argument("--requests", type=int, default=300, help="requests per setting and concurrency")
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit per setting and concurrency")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--startup_s", type=float, default=240.0)
    parser.add_argument("--root", type=Path, default=Path("runs") / "bench-serve",
                        help="where the servers' run directories go")
    parser.add_argument("--threads", type=int, default=0,
                        help="compute threads of the server's worker (0: the library's default); "
                             "1 on a machine shared with other jobs, where threads wait on each other")
    parser.add_argument("--backends", nargs="+", default=["pytorch", "onnxruntime"],
                        choices=["pytorch", "onnxruntime"])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    args.root.mkdir(parents=True, exist_ok=True)
    image = list_images(Path(args.data_dir) / list(sorted(os.listdir(args.data_dir)))[0])[0]
    payload = image.read_bytes()

    rows = []
    sources = {"pytorch": ["--ckpt_path", args.ckpt_path], "onnxruntime": ["--onnx", args.onnx]}
    for backend in args.backends:
        for batching, options in BATCHING.items():
            source = [*sources[backend], "--threads", str(args.threads)]
            process, url = start(args, source, options, args.root / f"serve-{backend}-{batching}.log")
            try:
                load(url, payload, 1, args.warmup, args.seconds)
                for concurrency in CONCURRENCY:
                    result = load(url, payload, concurrency, args.requests, args.seconds)
                    rows.append({"backend": backend, "batching": batching, "concurrency": concurrency, **result})
                    print(rows[-1], file=sys.stderr, flush=True)
            finally:
                stop(process)
    emit({"machine": machine(), "load_average": os.getloadavg(), "image": str(image),
          "threads": args.threads, "requests_per_setting": args.requests, "seconds_per_setting": args.seconds,
          "batching_on": BATCHING["on"], "results": rows}, args.json)


if __name__ == "__main__":
    main()
