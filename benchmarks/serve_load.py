"""The server under load and attack: good images, junk, oversized-dimension PNGs and malformed
multipart at 1, 8 and 32 clients; p50/p99 per class of request, and the server's peak memory.

    python benchmarks/serve_load.py --ckpt_path RUN/checkpoints/X.ckpt \\
        --data_dir ../shared/data/satellite --json serve_load.json

Loopback only, bounded in count and time: each scenario stops after ``--requests``
requests or ``--seconds`` seconds, whichever comes first, and the whole run is stopped (the
server killed and started afresh) if the server's memory passes ``--memory_guard_gb``; a
server that kept its memory after a scenario is restarted before the next. The scenarios:

- ``good``: one client sending the good image, alone (the unloaded latency);
- ``mix``: N clients, each cycling through good, junk, oversized and malformed requests;
- ``oversized``: N clients sending only the oversized PNG (threads of a child process),
  plus one client sending the good image (its latency is the "under load" figure).

Classes: ``good`` (a satellite JPEG, 200 expected), ``junk`` (random bytes as the file, 400),
``oversized`` (a single-colour 9000x9000 greyscale PNG, 81 Mpx in a small file, generated here at
run time, never stored), ``malformed`` (multipart whose boundary does not match its body).
Memory is the proportional set size (PSS, ``/proc/<pid>/smaps_rollup``) summed over the
server process and all its children (HTTP server, inference worker, queue manager), sampled
every 0.05 s; "idle" is measured after warm-up, before the first scenario. Clients are
threads with raw keep-alive sockets (requests are prebuilt bytes, so the clients take
little CPU), on the same machine as the server.

``--python``/``--checkout`` serve another checkout (e.g. the code before a change) with
another interpreter, so that two versions can be compared by the same client code.
"""

import argparse
import io
import multiprocessing
import os
import signal
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from benchmarks.common import emit, machine  # noqa: E402
from benchmarks.serve import ROOT, start_server, stop  # noqa: E402
from netscope.datamodules.image_cache import list_images  # noqa: E402

CLASSES = ("good", "junk", "oversized", "malformed")
EXPECTED = {"good": 200, "junk": 400, "oversized": 413, "malformed": 400}
CLIENT_TIMEOUT_S = 60.0
FORK = multiprocessing.get_context("fork")
#: A server that kept more than this share of its idle memory after a scenario is restarted,
#: so that every scenario starts from the same idle memory.
RESTART_ABOVE = 1.25


def multipart(field_name: str, filename: str, data: bytes, boundary: bytes) -> bytes:
    return (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"" + field_name.encode()
            + b"\"; filename=\"" + filename.encode() + b"\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            + data + b"\r\n--" + boundary + b"--\r\n")


def post(body: bytes, content_type: str) -> bytes:
    """A raw HTTP/1.1 ``POST /predict`` (keep-alive)."""
    return (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def oversized_png(side: int = 9000) -> bytes:
    """A single-colour ``side`` x ``side`` greyscale PNG: many pixels, few bytes (decoded
    as every image is, it becomes ``side**2 * 3`` bytes of RGB)."""
    buffer = io.BytesIO()
    Image.new("L", (side, side), 120).save(buffer, format="PNG", compress_level=9)
    return buffer.getvalue()


def requests_by_class(good: bytes) -> dict[str, bytes]:
    boundary = b"netscopebench"
    form = f"multipart/form-data; boundary={boundary.decode()}"
    junk = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    return {
        "good": post(multipart("file", "tile.jpg", good, boundary), form),
        "junk": post(multipart("file", "junk.jpg", junk, boundary), form),
        "oversized": post(multipart("file", "big.png", oversized_png(), boundary), form),
        # The body's boundary is not the declared one: no part can be found.
        "malformed": post(multipart("file", "tile.jpg", good, b"another"), form),
    }


class Client:
    """One keep-alive connection, reopened when the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""

    def ask(self, request: bytes) -> int:
        """Send ``request``; the response's status (0: connection failure or timeout)."""
        for attempt in range(2):
            try:
                if self.sock is None:
                    self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=CLIENT_TIMEOUT_S)
                    self.buffer = b""
                self.sock.sendall(request)
                return self._response()
            except (OSError, ConnectionError):
                self.close()
                if attempt:
                    return 0
        return 0

    def _response(self) -> int:
        while b"\r\n\r\n" not in self.buffer:
            self._receive()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        length = int(headers.get("content-length", 0))
        while len(self.buffer) < length:
            self._receive()
        self.buffer = self.buffer[length:]
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status

    def _receive(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        self.buffer += chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (from ``/proc/<pid>/stat``'s parent ids)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry))
            except (OSError, IndexError):
                continue
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending += children.get(pid, [])
    return tree


def tree_pss(root: int, tree: list[int] | None = None) -> int:
    """Proportional set size in bytes of ``root`` and all its descendants (or of ``tree``)."""
    total = 0
    for pid in tree or process_tree(root):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


class MemorySampler(threading.Thread):
    """Samples the server's memory every 0.05 s; past the guard it kills the server at once
    (its memory must come back before it takes the machine's) and sets ``over``."""

    def __init__(self, pid: int, guard_bytes: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.guard = pid, guard_bytes
        self.tree = process_tree(pid)  # fixed once the server answers /health
        self.peak = 0
        self.over = FORK.Event()  # seen by the load process too
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, tree_pss(self.pid, self.tree))
            if self.peak > self.guard:
                kill_tree(self.pid)
                self.over.set()
                return
            self.done.wait(0.05)


Results = dict[str, list[tuple[int, float]]]


def run_clients(port: int, plans: list[list[str]], payloads: dict[str, bytes], count: int,
            deadline: float, stop: "multiprocessing.synchronize.Event") -> Results:
    """One thread per plan, each cycling through its classes on its own connection, until
    ``count`` requests in all, ``deadline`` or ``stop``; ``(status, seconds)`` per class."""
    results: Results = {name: [] for name in CLASSES}
    lock = threading.Lock()
    sent = 0

    def client(plan: list[str]) -> None:
        nonlocal sent
        connection = Client(port)
        step = 0
        while True:
            with lock:
                if sent >= count or time.monotonic() > deadline or stop.is_set():
                    break
                sent += 1
            name = plan[step % len(plan)]
            step += 1
            began = time.perf_counter()
            status = connection.ask(payloads[name])
            with lock:
                results[name].append((status, time.perf_counter() - began))
        connection.close()

    threads = [threading.Thread(target=client, args=(plan,), daemon=True) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + CLIENT_TIMEOUT_S + 10)
    return results


def _load_process(sender: "multiprocessing.connection.Connection", *args: object) -> None:
    sender.send(run_clients(*args))


def scenario(port: int, plans: list[list[str]], load: list[list[str]], payloads: dict[str, bytes],
             count: int, seconds: float, sampler: MemorySampler) -> Results:
    """``plans`` as threads of this process and ``load`` as threads of a child process, so
    that the load's threads never hold this interpreter's lock while a measured client
    waits for it (a thread can wait up to 5 ms per switch)."""
    deadline = time.monotonic() + seconds
    child = None
    if load:
        receiver, sender = FORK.Pipe(duplex=False)
        child = FORK.Process(target=_load_process,
                             args=(sender, port, load, payloads, count, deadline, sampler.over), daemon=True)
        child.start()
    results = run_clients(port, plans, payloads, count, deadline, sampler.over)
    if child is not None:
        if receiver.poll(seconds + CLIENT_TIMEOUT_S + 30):
            for name, samples in receiver.recv().items():
                results[name] += samples
        child.join(10)
        if child.is_alive():
            child.kill()
    return results


def summarize(samples: list[tuple[int, float]]) -> dict:
    """Count, statuses and p50/p99 (nearest rank) of one class."""
    statuses: dict[str, int] = {}
    for status, _ in samples:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    times = sorted(t for _, t in samples)
    if not times:
        return {"n": 0, "statuses": {}}
    return {"n": len(times), "statuses": statuses, "p50_ms": round(1000 * statistics.median(times), 1),
            "p99_ms": round(1000 * times[min(len(times) - 1, int(np.ceil(0.99 * len(times))) - 1)], 1)}


def plans_for(kind: str, clients: int) -> tuple[list[list[str]], list[list[str]]]:
    """The measured clients' plans and the load's (see :func:`scenario`)."""
    match kind:
        case "good":
            return [["good"]], []
        case "mix":  # client i starts at class i, so every class is in flight at once
            return [list(CLASSES[i % 4:] + CLASSES[:i % 4]) for i in range(clients)], []
        case "oversized":
            return [["good"]], [["oversized"]] * clients
    raise ValueError(kind)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt_path", required=True, help="the checkpoint to serve")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "satellite.yaml")
    parser.add_argument("--data_dir", default=str(ROOT.parent / "shared" / "data" / "satellite"))
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--scenarios", nargs="+", default=["mix", "oversized"], choices=["mix", "oversized"],
                        help="the loaded scenarios to run (the unloaded 'good' one always runs first)")
    parser.add_argument("--requests", type=int, default=20000, help="requests per scenario at most")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per scenario at most")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--memory_guard_gb", type=float, default=6.0,
                        help="stop a scenario and restart the server when its memory passes this")
    parser.add_argument("--threads", type=int, default=1, help="compute threads of the server's worker")
    parser.add_argument("--python", default=sys.executable, help="the interpreter that runs the server")
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the checkout whose main.py serves")
    parser.add_argument("--label", default="", help="a name for this run in the output (e.g. before/after)")
    parser.add_argument("--root", type=Path, default=Path("runs") / "bench-serve-load")
    parser.add_argument("--startup_s", type=float, default=240.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    args.root.mkdir(parents=True, exist_ok=True)
    good_file = list_images(Path(args.data_dir) / sorted(os.listdir(args.data_dir))[0])[0]
    payloads = requests_by_class(good_file.read_bytes())
    serve_args = ["--config", str(args.config), "--data.init_args.data_dir", args.data_dir,
                  "--trainer.logger", "false", "--trainer.default_root_dir", str(args.root),
                  "--ckpt_path", args.ckpt_path, "--threads", str(args.threads)]
    guard = args.memory_guard_gb * 2**30

    def launch() -> tuple:
        log = args.root / f"serve-load-{args.label or 'run'}-{int(time.time())}.log"
        process, url = start_server(serve_args, log, args.startup_s, args.python, args.checkout)
        port = int(url.rsplit(":", 1)[1])
        warm = MemorySampler(process.pid, float("inf"))
        scenario(port, [["good"]], [], payloads, args.warmup, args.seconds, warm)
        time.sleep(1.0)
        return process, port, tree_pss(process.pid)

    process, port, idle = launch()
    fresh_idle = idle
    rows = []
    try:
        for kind, clients in [("good", 1)] + [(k, c) for k in args.scenarios for c in args.clients]:
            if tree_pss(process.pid) > RESTART_ABOVE * fresh_idle:  # memory kept from the last scenario
                stop(process)
                process, port, idle = launch()
            sampler = MemorySampler(process.pid, guard)
            sampler.start()
            began = time.perf_counter()
            results = scenario(port, *plans_for(kind, clients), payloads, args.requests, args.seconds, sampler)
            sampler.done.set()
            sampler.join()
            row = {"scenario": kind, "clients": clients, "wall_s": round(time.perf_counter() - began, 2),
                   "idle_gb": round(idle / 2**30, 3), "peak_gb": round(sampler.peak / 2**30, 3),
                   "peak_over_idle": round(sampler.peak / idle, 2), "stopped_by_guard": sampler.over.is_set(),
                   "classes": {name: summarize(samples) for name, samples in results.items() if samples}}
            rows.append(row)
            print(row, file=sys.stderr, flush=True)
            if sampler.over.is_set():  # killed by the guard: start afresh
                process.wait()
                process, port, idle = launch()
    finally:
        stop(process)
    emit({"label": args.label, "machine": machine(), "load_average": os.getloadavg(),
          "good_image": str(good_file), "good_bytes": len(good_file.read_bytes()),
          "oversized_request_bytes": len(payloads["oversized"]), "requests_per_scenario": args.requests,
          "seconds_per_scenario": args.seconds, "threads": args.threads, "results": rows}, args.json)


def kill_tree(root: int) -> None:
    """SIGKILL ``root`` and its descendants (the guard: memory must come back at once)."""
    for pid in process_tree(root):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


if __name__ == "__main__":
    main()
