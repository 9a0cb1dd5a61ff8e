"""Run a study's combinations, each as its own ``main.py`` process, up to ``jobs`` at once.

One process per run, as ``wandb agent`` does it: every run starts from a fresh
interpreter (same seed, same initial weights for the same model), and a run that crashes
cannot take the study down with it. ``jobs`` runs go at once, with the machine's cores
divided among them (``OMP_NUM_THREADS``, which torch reads at start-up): a run's result
depends on its own thread count only, never on how many runs share the machine.

A study folder never loses a result: a finished run is never run again or overwritten,
a rerun with another command line into the same folder is refused, so is a second runner
while one is working in it, and a study stopped in any way (Ctrl+C, ``kill -9``) goes on
with the same command.
"""

import ctypes
import fcntl
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from netscope.core.errors import UserError
from netscope.studies.expand import build_command, combo_key, expand, labels, varying
from netscope.studies.index import Entry, StudyIndex, done_earlier, is_final, read_summary
from netscope.studies.spec import Study
from netscope.studies.text import format_seconds

#: How long an interrupted run gets to write its ``metrics.json`` before it is killed.
INTERRUPT_GRACE_S = 30.0
#: How often the runner looks whether a run has ended.
POLL_S = 0.2
_ERROR_LINE = re.compile(r"^(netscope: error:|error:|[A-Za-z_.]*(Error|Exception)\b)")


@dataclass
class Launched:
    """A run in progress: its entry, process, log and the run directories before it."""

    number: int
    entry: Entry
    process: subprocess.Popen
    log: IO[str]
    started: float
    before: set[Path]


def default_threads(jobs: int) -> int:
    """The cores this process may use, divided among ``jobs`` runs (at least one each)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // jobs)


#: The file a working runner holds locked in its study folder (the OS drops the lock when the
#: runner dies, even by ``kill -9``, so a stale file never blocks the next run).
LOCK_FILE = ".runner.lock"


@contextmanager
def folder_lock(out: Path) -> Iterator[None]:
    """Hold ``out``'s runner lock; refuse, naming the holder, while another runner holds it.
    Two runners in one folder would both run the same combinations and overwrite its index."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / LOCK_FILE, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise UserError(f"another `python -m studies run` ({holder}) is running into {out}: "
                            f"wait for it to finish, or give this one its own --out folder.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_study(
    study: Study,
    out: Path,
    extra: list[str],
    count: int | None = None,
    dry_run: bool = False,
    echo: Callable[[str], None] | None = None,
    jobs: int = 1,
    threads: int | None = None,
) -> StudyIndex:
    """Run every combination of ``study`` not already done, recording each in ``out``.

    Args:
        study: the study.
        out: the study folder (``index.json``, ``runs/``, ``logs/``, the report).
        extra: overrides appended to every run's command line.
        count: run at most this many combinations.
        dry_run: print the command lines instead of running them.
        echo: where progress lines go (default: standard output, flushed per line).
        jobs: how many runs go at once.
        threads: torch threads per run (default: the cores divided among ``jobs``).

    Returns:
        The study's index, saved in ``out`` whenever a run starts or ends.
    """
    if dry_run:
        return _run_study(study, out, extra, count, dry_run, echo, jobs, threads)
    with folder_lock(out):
        return _run_study(study, out, extra, count, dry_run, echo, jobs, threads)


def _run_study(study: Study, out: Path, extra: list[str], count: int | None, dry_run: bool,
               echo: Callable[[str], None] | None, jobs: int, threads: int | None) -> StudyIndex:
    echo = echo or (lambda line: print(line, flush=True))  # progress shows as it happens, even in a pipe
    threads = threads or default_threads(jobs)
    combos = expand(study, count)
    names = labels(combos, study.name)
    index = StudyIndex.load(out, study.name)
    commands = [build_command(study, combo, ["--trainer.default_root_dir", str(out / "runs"),
                                             "--run_name", label, *extra])
                for combo, label in zip(combos, names)]
    keys = [combo_key(combo) for combo in combos]
    refuse_other_commands(index, out, keys, commands, names)
    index.study, index.source = study.name, str(study.path)
    index.metric = dict(study.metric or {})
    index.order = keys
    done = sum(done_earlier(index.entries.get(key), out, command) for key, command in zip(keys, commands))
    echo(f"study {study.name}: {len(combos)} runs ({study.method}; varying "
         f"{', '.join(varying(combos)) or 'nothing'}), {done} done earlier; output in {out}"
         + ("" if dry_run else f"; {jobs} at a time, {threads} thread{'s' * (threads > 1)} each"))
    todo = []
    for number, (key, combo, label, command) in enumerate(zip(keys, combos, names, commands), start=1):
        if done_earlier(index.entries.get(key), out, command):
            echo(progress_line(number, len(combos), index.entries[key], out, note="(done earlier)"))
        elif dry_run:
            echo(shlex.join(command))
        else:
            todo.append((number, Entry(key=key, label=label, values=combo, command=command,
                                       threads=threads)))
    if dry_run or not todo:
        return index
    started = time.monotonic()
    session = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "runs": 0, "jobs": jobs, "threads": threads, "wall_s": 0.0}
    index.sessions.append(session)
    running: list[Launched] = []
    try:
        while todo or running:
            while todo and len(running) < jobs:
                number, entry = todo.pop(0)
                index.entries[entry.key] = entry
                launched = launch(number, entry, out, group=study.name)
                index.save(out)  # "running": a study killed now runs it again next time
                if launched is None:
                    echo(progress_line(number, len(combos), entry, out))
                else:
                    running.append(launched)
            time.sleep(POLL_S)
            for launched in [run for run in running if run.process.poll() is not None]:
                running.remove(launched)
                finish(launched, out)
                session["runs"] += 1
                session["wall_s"] = round(time.monotonic() - started, 1)
                index.save(out)
                echo(progress_line(launched.number, len(combos), launched.entry, out))
    except KeyboardInterrupt:
        for launched in running:
            stop(launched.process)
            finish(launched, out)
        raise
    finally:
        session["wall_s"] = round(time.monotonic() - started, 1)
        index.save(out)
    echo(f"study {study.name}: finished in {format_seconds(session['wall_s'])}")
    return index


def refuse_other_commands(index: StudyIndex, out: Path, keys: list[str], commands: list[list[str]],
                          names: list[str]) -> None:
    """Refuse to run when a finished run of the same combination had another command line
    (other overrides, another config): running it again would replace a result by
    another experiment's under the same name."""
    for key, command, name in zip(keys, commands, names):
        entry = index.entries.get(key)
        if is_final(entry, out) and entry.command != command:
            before = [item for item in entry.command if item not in command]
            now = [item for item in command if item not in entry.command]
            raise UserError(
                f"{out} already holds a finished run of `{name}` made with another command line "
                f"(it had {shlex.join(before) or 'nothing more'}; this one has "
                f"{shlex.join(now) or 'nothing more'}). Running it again would put another "
                f"experiment's result in its place. Give these overrides their own study folder "
                f"with --out, or delete {out} to start over.")


def launch(number: int, entry: Entry, out: Path, group: str) -> Launched | None:
    """Start one run's process, its output going to ``logs/<label>.log``; ``None`` (and
    the entry marked failed) when the command cannot start.

    The run joins the W&B group ``group`` through ``WANDB_RUN_GROUP``, which
    ``wandb.init`` reads for any configured WandbLogger, and which does nothing when a
    config turns W&B off (``--trainer.logger.init_args.group`` would be rejected there).
    """
    runs, logs = out / "runs", out / "logs"
    runs.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{entry.label}.log"
    entry.log, entry.status, entry.reason = str(log_path.relative_to(out)), "running", None
    log = log_path.open("w")
    log.write(f"$ {shlex.join(entry.command)}\n\n")
    log.flush()
    threads = str(entry.threads or 1)
    env = os.environ | {"WANDB_RUN_GROUP": group, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    before = set(runs.iterdir())
    try:
        process = subprocess.Popen(entry.command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    except OSError as error:  # e.g. a `command` naming a program that is not there
        entry.elapsed_s, entry.status = 0.0, "failed"
        entry.reason = f"could not start {entry.command[0]}: {error.strerror or error}"
        log.write(entry.reason + "\n")
        log.close()
        return None
    return Launched(number, entry, process, log, time.monotonic(), before)


def finish(launched: Launched, out: Path) -> None:
    """Fill a finished run's entry: its run directory, status, reason and time."""
    launched.log.close()
    entry = launched.entry
    entry.elapsed_s = round(time.monotonic() - launched.started, 1)
    run_dir = find_run_dir(out / "runs", launched.before, entry.label)
    entry.run_dir = str(run_dir.relative_to(out)) if run_dir else None
    entry.status, entry.reason = outcome(run_dir, launched.process.returncode, out / entry.log)


def _die_with_parent() -> None:
    """In the child: ask Linux to kill this run when the runner dies, even by ``kill -9``,
    so that no orphan goes on writing into the study folder while the study is rerun."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def stop(process: subprocess.Popen) -> None:
    """Let an interrupted run record itself (it got the terminal's SIGINT too), then end it."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=INTERRUPT_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def find_run_dir(runs: Path, before: set[Path], label: str) -> Path | None:
    """The directory a run made: new since it started, and named ``<timestamp>-<label>``
    (:func:`core.rundir.create_run_dir`), which tells it from the runs beside it."""
    pattern = re.compile(rf"\d{{8}}-\d{{6}}-{re.escape(label)}(-\d+)?")
    created = sorted(path for path in set(runs.iterdir()) - before if pattern.fullmatch(path.name))
    return created[-1] if created else None


def outcome(run_dir: Path | None, returncode: int | None, log_path: Path) -> tuple[str, str | None]:
    """How a run ended: its ``metrics.json`` says so, unless the process failed before
    writing one (a rejected value, a crash), in which case the log's error line does."""
    summary = read_summary(run_dir) if run_dir else {}
    status = summary.get("status")
    if status and status != "running" and (returncode == 0 or status != "completed"):
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
