"""What a person sees, and what a script can gate on: the console in a real pseudo-terminal
and piped, and the exit status of every way a command ends."""

import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pyte
import pytest

from netscope.doctor.__main__ import main as doctor_main
from tests.helpers import CONFIGS, make_mnist, metrics, run

ROOT = Path(__file__).resolve().parents[1]
XOR = ["--config", str(CONFIGS / "xor.yaml")]


@pytest.fixture(scope="module")
def mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mnist(tmp_path_factory.mktemp("mnist"), train=900, test=60)


def short_mnist(mnist: Path, root: Path) -> list[str]:
    return [sys.executable, str(ROOT / "main.py"), "fit", "--config", str(CONFIGS / "mnist.yaml"),
            "--data.init_args.data_dir", str(mnist), "--trainer.max_epochs", "2",
            "--trainer.limit_train_batches", "8", "--trainer.limit_val_batches", "2",
            "--trainer.log_every_n_steps", "4", "--trainer.default_root_dir", str(root)]


def in_terminal(command: list[str], columns: int, cwd: Path) -> list[str]:
    """The lines a terminal of ``columns`` columns shows, scrollback included, after
    ``command`` ran in it (a real pseudo-terminal, rendered by a terminal emulator)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command, with the terminal as its stdin/stdout/stderr
        os.chdir(cwd)
        os.environ.update(COLUMNS=str(columns), LINES="40", WANDB_MODE="disabled")
        os.execvp(command[0], command)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    output, deadline = b"", time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 5)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        output += data
    os.waitpid(pid, 0)
    screen = pyte.HistoryScreen(columns, 40, history=10000, ratio=0.5)
    pyte.ByteStream(screen).feed(output)
    history = ["".join(row[x].data for x in range(columns)).rstrip() for row in screen.history.top]
    return [line for line in [*history, *(line.rstrip() for line in screen.display)] if line]


@pytest.mark.parametrize("columns", [120, pytest.param(150, marks=pytest.mark.slow)])
def test_the_doctor_stays_on_screen_above_the_progress_bar(mnist, tmp_path, columns):
    lines = in_terminal(short_mnist(mnist, tmp_path / "runs"), columns, tmp_path)
    text = "\n".join(lines)
    starts = [line for line in lines if line.startswith("Doctor (")]
    assert any(s.startswith("Doctor (pre-flight check, step 0): no findings") for s in starts), text
    assert any(s.startswith("Doctor (end of fit, step 16): no findings") for s in starts), text
    assert not [line for line in lines if "Doctor (" in line and not line.startswith("Doctor (")], text
    assert any(line.startswith("netscope: fit completed; outputs in") for line in lines), text
    assert "it/s" in text  # and it was the rich progress bar that drew


def test_a_short_piped_fit_prints_a_few_lines(mnist, tmp_path):
    started = time.monotonic()
    done = subprocess.run(short_mnist(mnist, tmp_path / "runs"), capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "WANDB_MODE": "offline"})
    lived = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) <= 25, "\n".join(lines)
    text = "\n".join(lines)
    for noise in ("GPU available", "TPU available", "Restoring states", "Loaded model weights",
                  "site-packages", "MetricCollection", "MeanMetric", "┃ Test metric", "Seed set"):
        assert noise not in text, noise
    assert "test: test/acc" in text and "Per-class test report" in text
    assert sum(line.startswith("epoch ") for line in lines) == 2
    run_dir = next((tmp_path / "runs").iterdir())
    # wall_time_s is the command's real time: never more than the process lived
    assert 0 < metrics(run_dir)["wall_time_s"] < lived


def test_wall_time_is_the_commands_own_time(mnist, tmp_path):
    started = time.monotonic()
    run_dir = run("fit", "--config", str(CONFIGS / "mnist.yaml"), "--data.init_args.data_dir",
                  str(mnist), "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "8",
                  "--trainer.limit_val_batches", "2", "--trainer.logger", "false",
                  root=tmp_path / "runs")
    took = time.monotonic() - started
    # the fit and the test after it (which loads the best checkpoint: its saved wall time
    # used to be counted again)
    assert 0.5 * took < metrics(run_dir)["wall_time_s"] <= took


def signalled(tmp_path: Path, signum: int, after: str) -> tuple[subprocess.Popen, str]:
    """Run a long XOR fit, send ``signum`` once ``after`` holds (``epoch``: a few epochs in;
    ``start``: still starting up), and return the finished process and its stderr."""
    command = [sys.executable, str(ROOT / "main.py"), "fit", *XOR, "--trainer.max_epochs",
               "100000", "--trainer.default_root_dir", str(tmp_path / "runs")]
    process = subprocess.Popen(command, cwd=tmp_path, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while after == "epoch" and time.monotonic() < deadline and process.poll() is None:
        found = list((tmp_path / "runs").glob("*/metrics.json"))
        try:
            if found and json.loads(found[0].read_text())["epoch"] >= 2:
                break
        except ValueError:
            pass
        time.sleep(0.2)
    if after == "start":
        time.sleep(1.0)  # importing torch and Lightning: long before any run directory
    process.send_signal(signum)
    try:
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    return process, err


@pytest.mark.parametrize(("signum", "status"), [
    (signal.SIGTERM, 143), pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow)])
def test_an_interrupted_fit_records_it_and_exits_with_the_signal_status(tmp_path, signum, status):
    process, err = signalled(tmp_path, signum, "epoch")
    assert process.returncode == status, err
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert metrics(run_dir)["status"] == "interrupted"
    assert "resume it with: python main.py fit" in err and "Traceback" not in err


def test_ctrl_c_while_starting_up_is_one_line(tmp_path):
    process, err = signalled(tmp_path, signal.SIGINT, "start")
    assert process.returncode == 130
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2, err


def test_check_and_the_doctor_exit_non_zero_on_an_error_finding(tmp_path, capsys):
    healthy = run("check", *XOR, root=tmp_path / "runs")
    symmetric = run("check", *XOR, "--model.init_args.init", "zeros", root=tmp_path / "runs",
                    exit_code=1)
    assert metrics(symmetric)["findings"][0]["severity"] == "error"
    run("check", *XOR, "--model.init_args.init", "zeros", "--fail_on", "never",
        root=tmp_path / "runs")
    # a warning (an initial loss far above chance) fails only with --fail_on warning
    loud = ["--model.init_args.init", "normal", "--model.init_args.init_scale", "30"]
    warned = run("check", *XOR, *loud, root=tmp_path / "runs")
    assert {f["severity"] for f in metrics(warned)["findings"]} == {"warning"}
    run("check", *XOR, *loud, "--fail_on", "warning", root=tmp_path / "runs", exit_code=1)
    for run_dir, fail_on, expected in ((healthy, "error", 0), (symmetric, "error", 1),
                                       (symmetric, "never", 0), (warned, "error", 0),
                                       (warned, "warning", 1)):
        with pytest.raises(SystemExit) as stopped:
            doctor_main([str(run_dir), "--fail_on", fail_on])
        assert stopped.value.code == expected, (run_dir, fail_on)
    capsys.readouterr()
