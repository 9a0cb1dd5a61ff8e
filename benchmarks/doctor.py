"""The doctor's detection table on the fault zoo, and its overhead.

``python -m benchmarks.doctor [--json PATH] [--cases a,b] [--overhead-steps N]`` runs every
case of ``benchmarks/zoo.py`` through ``main`` (as a user would), reads each run's
``metrics.json`` findings, and prints per case: the expected and found codes, whether the
layer is right, and the step of first detection; then recall, layer accuracy, warnings or
errors on the healthy runs, and the doctor's overhead over the diagnostics alone (the MNIST
config with and without ``callbacks.Doctor``, alternated in one process).
"""

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from benchmarks.zoo import CONFIGS, SHARED_DATA, ZOO, Case, arguments, mnist
from netscope.callbacks.doctor import Doctor
from netscope.cli import DEFAULTS_FILE, NetscopeCLI
from netscope.core.rundir import RunDir
from netscope.main import main

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck"]


def tiny_cifar(root: Path) -> Path:
    """3 random 32x32 PNGs per class and split (as tests/conftest.py's ``tiny_cifar``)."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in CIFAR_CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(3):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}.png")
    return root


def layer_of(where: str) -> str:
    """The layer a finding names: itself, or the module of a parameter it names."""
    return where.removesuffix(".weight").removesuffix(".bias")


def run_case(case: Case, root: Path, cifar: Path | None = None) -> dict:
    """Run one case; its findings, wall time and verdict."""
    before = set(root.iterdir()) if root.exists() else set()
    started = time.perf_counter()
    main([*arguments(case, SHARED_DATA, cifar), "--trainer.default_root_dir", str(root)])
    wall = time.perf_counter() - started
    run_dir = sorted(set(root.iterdir()) - before)[-1]
    summary = RunDir(run_dir).summary() or {}
    findings = summary.get("findings", [])
    serious = [f for f in findings if f["severity"] in ("warning", "error")]
    row = {"case": case.name, "expected": case.code, "expected_where": case.where,
           "found": sorted({f["code"] for f in serious}), "status": summary["status"],
           "wall_s": round(wall, 1), "run_dir": str(run_dir)}
    if case.code is None:
        row["false_findings"] = [f"{f['code']}@{f['where']}" for f in serious]
        row["ok"] = not serious
    else:
        hits = [f for f in findings if f["code"] == case.code]
        row["detected"] = bool(hits)
        row["layer_right"] = any(layer_of(f["where"]) == case.where for f in hits)
        row["where_found"] = sorted({f["where"] for f in hits})
        row["first_step"] = min((f["step"] for f in hits), default=None)
        row["ok"] = row["detected"] and row["layer_right"]
    return row


class TimedDoctor(Doctor):
    """The Doctor, counting the CPU time its hooks take (pre-flight apart)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seconds = {"preflight": 0.0, "rules": 0.0}

    def run_preflight(self, *args, **kwargs) -> None:
        started = time.process_time()
        super().run_preflight(*args, **kwargs)
        self.seconds["preflight"] += time.process_time() - started

    def on_train_batch_end(self, *args, **kwargs) -> None:
        started = time.process_time()
        super().on_train_batch_end(*args, **kwargs)
        self.seconds["rules"] += time.process_time() - started

    def on_train_epoch_end(self, *args, **kwargs) -> None:
        started = time.process_time()
        super().on_train_epoch_end(*args, **kwargs)
        self.seconds["rules"] += time.process_time() - started


def overhead(root: Path, steps: int, repeats: int) -> dict:
    """The doctor's cost on the MNIST config (diagnostics on): CPU time inside its hooks
    over the fit's CPU time (robust on a busy machine), and fit wall time with and without
    it, alternated in this process."""
    config = yaml.safe_load((CONFIGS / "mnist.yaml").read_text())
    listed = config["trainer"].get("callbacks") or \
        yaml.safe_load(DEFAULTS_FILE.read_text())["trainer"]["callbacks"]  # every command's
    without = [c for c in listed if c["class_path"] != "netscope.callbacks.Doctor"]
    configs = {}
    for label, callbacks in (("without", without),
                             ("with", [*without, {"class_path": "benchmarks.doctor.TimedDoctor"}])):
        configs[label] = root / f"mnist_{label}_doctor.yaml"
        configs[label].write_text(yaml.safe_dump({**config, "trainer": {**config["trainer"],
                                                                         "callbacks": callbacks}}))
    times: dict[str, list[float]] = {"with": [], "without": []}
    cpu: dict[str, list[float]] = {"fit": [], "rules": [], "preflight": []}
    for _ in range(repeats):
        for label in ("without", "with"):
            args = list(mnist(steps=steps, every=50))
            args[args.index("--config") + 1] = str(configs[label])
            args[args.index("{data}/mnist")] = str(SHARED_DATA / "mnist")
            cli_started, cpu_started = time.perf_counter(), time.process_time()
            cli = NetscopeCLI(["fit", *args, "--trainer.limit_val_batches", "0",
                               "--trainer.default_root_dir", str(root / label)])
            times[label].append(time.perf_counter() - cli_started)
            if label == "with":
                # by name: the config imports benchmarks.doctor anew, beside this __main__
                doctor = next(c for c in cli.trainer.callbacks
                              if type(c).__name__ == "TimedDoctor")
                cpu["fit"].append(time.process_time() - cpu_started)
                cpu["rules"].append(doctor.seconds["rules"])
                cpu["preflight"].append(doctor.seconds["preflight"])
    with_s, without_s = statistics.median(times["with"]), statistics.median(times["without"])
    return {"steps": steps, "repeats": repeats, "wall_with_s": times["with"],
            "wall_without_s": times["without"], "wall_overhead": with_s / without_s - 1,
            "cpu_fit_s": cpu["fit"], "cpu_rules_s": cpu["rules"], "cpu_preflight_s": cpu["preflight"],
            "cpu_share_rules": statistics.median(r / f for r, f in zip(cpu["rules"], cpu["fit"])),
            "cpu_share_with_preflight": statistics.median(
                (r + p) / f for r, p, f in zip(cpu["rules"], cpu["preflight"], cpu["fit"]))}


def main_cli(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the table and totals here")
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--overhead-steps", type=int, default=844, help="0: skip the overhead")
    parser.add_argument("--overhead-repeats", type=int, default=3)
    args = parser.parse_args(argv)
    chosen = [c for c in ZOO if not args.cases or c.name in args.cases.split(",")]
    work = Path(tempfile.mkdtemp(prefix="doctor-zoo-"))
    rows = []
    try:
        cifar = tiny_cifar(work / "cifar10")
        for case in chosen:
            if case.data and not (SHARED_DATA / case.data).exists():
                rows.append({"case": case.name, "skipped": f"no {SHARED_DATA / case.data}"})
                continue
            rows.append(run_case(case, work / case.name, cifar))
            print(json.dumps(rows[-1]), flush=True)
        broken = [r for r in rows if r.get("expected")]
        healthy = [r for r in rows if "false_findings" in r]
        totals = {
            "recall": sum(r["detected"] for r in broken) / max(len(broken), 1),
            "layer_accuracy": sum(r["layer_right"] for r in broken) / max(len(broken), 1),
            "broken_cases": len(broken), "healthy_cases": len(healthy),
            "false_findings_on_healthy": sum(len(r["false_findings"]) for r in healthy),
        }
        if args.overhead_steps:
            totals["overhead"] = overhead(work, args.overhead_steps, args.overhead_repeats)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(rows, totals)
    if args.json:
        args.json.write_text(json.dumps({"cases": rows, "totals": totals}, indent=2) + "\n")
    return totals


def print_table(rows: list[dict], totals: dict) -> None:
    print(f"\n{'case':<22} {'expected':<20} {'found':<46} {'layer':<6} {'step':>5}")
    for r in rows:
        if "skipped" in r:
            print(f"{r['case']:<22} skipped: {r['skipped']}")
            continue
        found = ",".join(r["found"]) or "-"
        layer = "" if r["expected"] is None else ("yes" if r["layer_right"] else "NO")
        step = "" if r.get("first_step") is None else r["first_step"]
        print(f"{r['case']:<22} {r['expected'] or '(healthy)':<20} {found:<46} {layer:<6} {step!s:>5}")
    print(f"\nrecall {totals['recall']:.0%} of {totals['broken_cases']}, right layer "
          f"{totals['layer_accuracy']:.0%}, warnings/errors on {totals['healthy_cases']} healthy "
          f"runs: {totals['false_findings_on_healthy']}")
    if "overhead" in totals:
        o = totals["overhead"]
        print(f"doctor overhead over diagnostics alone ({o['steps']} MNIST steps, median of "
              f"{o['repeats']}): CPU in its hooks {o['cpu_share_rules']:.2%} of the fit "
              f"({o['cpu_share_with_preflight']:.2%} with the pre-flight); wall time "
              f"{o['wall_overhead']:+.1%}")


if __name__ == "__main__":
    main_cli()
