"""Run a study's combinations one after another, each as its own ``main.py`` process.

One process per run, as ``wandb agent`` does it: every run starts from a fresh
interpreter (same seed, same initial weights for the same model), and a run that crashes
cannot take the study down with it. Runs go one at a time because a CPU machine has
no cores to spare for a second one.
"""

import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from studies.expand import build_command, combo_key, expand, labels, varying
from studies.index import Entry, StudyIndex, done_earlier, read_summary
from studies.spec import Study

#: How long an interrupted run gets to write its ``metrics.json`` before it is killed.
INTERRUPT_GRACE_S = 30.0
_ERROR_LINE = re.compile(r"^(netscope: error:|error:|[A-Za-z_.]*(Error|Exception)\b)")


def run_study(
    study: Study,
    out: Path,
    extra: list[str],
    count: int | None = None,
    dry_run: bool = False,
    echo: Callable[[str], None] | None = None,
) -> StudyIndex:
    """Run every combination of ``study`` not already done, recording each in ``out``.

    Args:
        study: the study.
        out: the study folder (``index.json``, ``runs/``, ``logs/``, the report).
        extra: overrides appended to every run's command line.
        count: run at most this many combinations.
        dry_run: print the command lines instead of running them.
        echo: where progress lines go (default: standard output, flushed per line).

    Returns:
        The study's index, saved in ``out`` after every run.
    """
    echo = echo or (lambda line: print(line, flush=True))  # progress shows as it happens, even in a pipe
    combos = expand(study, count)
    names = labels(combos, study.name)
    index = StudyIndex.load(out, study.name)
    index.study, index.source = study.name, str(study.path)
    index.order = [combo_key(combo) for combo in combos]
    commands = [build_command(study, combo, ["--trainer.default_root_dir", str(out / "runs"),
                                             "--run_name", label, *extra])
                for combo, label in zip(combos, names)]
    done = sum(done_earlier(index.entries.get(key), out, command)
               for key, command in zip(index.order, commands))
    echo(f"study {study.name}: {len(combos)} runs ({study.method}; varying "
         f"{', '.join(varying(combos)) or 'nothing'}), {done} done earlier; output in {out}")
    started = time.monotonic()
    for number, (combo, label, command) in enumerate(zip(combos, names, commands), start=1):
        key = combo_key(combo)
        if done_earlier(index.entries.get(key), out, command):
            echo(progress_line(number, len(combos), index.entries[key], out, note="(done earlier)"))
            continue
        if dry_run:
            echo(shlex.join(command))
            continue
        entry = index.entries[key] = Entry(key=key, label=label, values=combo, command=command)
        try:
            run_one(entry, out, group=study.name)
        finally:
            index.save(out)
        echo(progress_line(number, len(combos), entry, out))
    if not dry_run:
        index.save(out)
        echo(f"study {study.name}: finished in {format_seconds(time.monotonic() - started)}")
    return index


def run_one(entry: Entry, out: Path, group: str) -> None:
    """Run one combination; fill ``entry`` with its run directory, status and time.

    The run joins the W&B group ``group`` through ``WANDB_RUN_GROUP``, which
    ``wandb.init`` reads for any configured WandbLogger, and which does nothing when a
    config turns W&B off (``--trainer.logger.init_args.group`` would be rejected there).
    """
    runs, logs = out / "runs", out / "logs"
    runs.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    before = set(runs.iterdir())
    log_path = logs / f"{entry.label}.log"
    entry.log = str(log_path.relative_to(out))
    started = time.monotonic()
    with log_path.open("w") as log:
        log.write(f"$ {shlex.join(entry.command)}\n\n")
        log.flush()
        try:
            process = subprocess.Popen(entry.command, stdout=log, stderr=subprocess.STDOUT,
                                       env=os.environ | {"WANDB_RUN_GROUP": group})
        except OSError as error:  # e.g. a `command` naming a program that is not there
            entry.elapsed_s, entry.status = 0.0, "failed"
            entry.reason = f"could not start {entry.command[0]}: {error.strerror or error}"
            log.write(entry.reason + "\n")
            return
        try:
            process.wait()
        except KeyboardInterrupt:
            _stop(process)
            raise
        finally:
            entry.elapsed_s = round(time.monotonic() - started, 1)
            run_dir = _new_run_dir(runs, before, entry.label)
            entry.run_dir = str(run_dir.relative_to(out)) if run_dir else None
            entry.status, entry.reason = outcome(run_dir, process.returncode, log_path)


def _stop(process: subprocess.Popen) -> None:
    """Let an interrupted run record itself (it got the terminal's SIGINT too), then end it."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=INTERRUPT_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _new_run_dir(runs: Path, before: set[Path], label: str) -> Path | None:
    created = sorted(set(runs.iterdir()) - before)
    if len(created) > 1:  # not expected: runs go one at a time; prefer the one named for it
        created = [path for path in created if path.name.endswith(label)] or created
    return created[-1] if created else None


def outcome(run_dir: Path | None, returncode: int | None, log_path: Path) -> tuple[str, str | None]:
    """How a run ended: its ``metrics.json`` says so, unless the process failed before
    writing one (a rejected value, a crash), in which case the log's error line does."""
    summary = read_summary(run_dir) if run_dir else {}
    status = summary.get("status")
    if status and (returncode == 0 or status != "completed"):
        return status, summary.get("reason")
    if returncode == 0:
        return "failed", "the run wrote no metrics.json"
    if returncode is not None and returncode < 0:
        return "interrupted", f"stopped by signal {-returncode}"
    return "failed", error_line(log_path) or f"exit status {returncode}"


def error_line(log_path: Path, limit: int = 300) -> str | None:
    """The last line of a log that states an error (``netscope: error: ...``, a
    parser's ``error: ...``, or a traceback's ``SomeError: ...``)."""
    try:
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines()]
    except OSError:
        return None
    numbers = [n for n, line in enumerate(lines) if _ERROR_LINE.match(line)]
    if not numbers:
        line = next((line for line in reversed(lines) if line), None)
        return line[:limit] if line else None
    line = lines[numbers[-1]]
    # jsonargparse lists the cause under the error ("Errors:" then "- <cause>"): keep it.
    cause = next((item for item in lines[numbers[-1] + 1:numbers[-1] + 6] if item.startswith("- ")), None)
    if cause:
        line = f"{line} ({cause[2:]})"
    return line[:limit]


def progress_line(number: int, total: int, entry: Entry, out: Path, note: str = "") -> str:
    """``[2/4] tanh  completed  val/acc 0.9552  test/acc 0.9540  1:03``"""
    summary = read_summary(out / entry.run_dir) if entry.run_dir else {}
    parts = [f"[{number}/{total}]", entry.label, entry.status]
    for metric in ("val/acc", "test/acc"):
        if isinstance(summary.get(metric), (int, float)):
            parts.append(f"{metric} {summary[metric]:.4f}")
    if entry.elapsed_s is not None:
        parts.append(format_seconds(entry.elapsed_s))
    if note:
        parts.append(note)
    if entry.status not in ("completed", "diverged") and entry.reason:
        parts.append(f"- {entry.reason} (log: {out / entry.log})" if entry.log else f"- {entry.reason}")
    elif entry.status == "diverged" and entry.reason:
        parts.append(f"- {entry.reason}")
    return "  ".join(parts)


def format_seconds(seconds: float) -> str:
    """``42.0 s`` or ``12:05`` (minutes:seconds)."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"
