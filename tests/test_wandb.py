"""Weights & Biases: offline by itself without credentials, the whole config on the run,
one run directory per run, naming and grouping from flags, and the mode decisions.

Runs are read back with ``wandb leet inspect``, W&B's own reader of a run's log. Online
behaviour cannot reach a server here, so it is covered by the decisions: what
``decide``/``wandb_environment`` choose and what the built ``WandbLogger`` hands to
``wandb.init``.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from main import main
from netscope.cli import NetscopeCLI
from netscope.config_saver import ATTACHED_CONFIG
from netscope.core.errors import UserError
from netscope.wandb_setup import WandbEnvironment, decide, wandb_environment
from tests.helpers import CONFIGS, FAST, SHARED_DATA, metrics, requires_shared, run

MNIST = ["fit", "--config", str(CONFIGS / "mnist.yaml"),
         "--data.init_args.data_dir", str(SHARED_DATA / "mnist"), *FAST]
#: The default logger, for configs that turn logging off (xor.yaml).
WANDB = ["--trainer.logger", "lightning.pytorch.loggers.WandbLogger",
         "--trainer.logger.init_args.project", "netscope"]
API_KEY = "0123456789abcdef0123456789abcdef01234567"  # the shape of a key; never sent anywhere


def leet(run_dir: Path, *args: str) -> str:
    """``wandb leet inspect <args> <run_dir>/wandb``: what W&B itself reads from the run."""
    command = [sys.executable, "-m", "wandb", "leet", "inspect", *args, str(run_dir / "wandb")]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout


def run_record(run_dir: Path) -> dict:
    """The run's ``run`` record (name, group, job type, tags) from its transaction log."""
    records = [json.loads(line) for line in leet(run_dir, "--json").splitlines() if line.strip()]
    return next(r["run"] for r in records if r["type"] == "run")


@requires_shared("mnist")
def test_offline_fit_without_credentials(tmp_path, capfd):
    run_dir = run(*MNIST, "--trainer.logger.init_args.group", "mystudy",
                  "--trainer.logger.init_args.tags", "[lr-sweep]",
                  "--trainer.logger.init_args.job_type", "sweep", root=tmp_path / "runs")
    output = "".join(capfd.readouterr())
    wandb_dir = run_dir / "wandb"

    # One notice: offline, where, and the two commands with the real path.
    assert output.count("W&B is offline") == 1
    assert f"This run is saved in {wandb_dir}" in output
    assert f"wandb leet {wandb_dir}" in output
    assert f"wandb login && wandb sync {wandb_dir}" in output
    assert "You can sync this run" not in output  # wandb's own footer says it again
    assert metrics(run_dir)["status"] == "completed"

    summary = json.loads(leet(run_dir, "--summary", "--json"))
    assert summary["state"] == "finished" and summary["project"] == "netscope"
    assert summary["name"] == run_dir.name
    # The whole resolved config, nested as on the command line, linked values included.
    config = summary["config"]
    assert {"model", "data", "optimizer", "lr_scheduler", "trainer", "seed_everything"} <= set(config)
    # Nested, not flattened, and the model's hyper-parameters not repeated at the top.
    assert not [key for key in config if "." in key or key in ("activation", "num_classes")]
    model = config["model"]["init_args"]
    assert config["model"]["class_path"] == "netscope.models.MLP"
    assert model["activation"] == "relu" and model["hidden_sizes"] == [128, 64]
    assert model["num_classes"] == 10 and model["input_shape"] == [1, 28, 28]  # linked
    assert config["optimizer"]["init_args"]["lr"] == 0.003
    assert config["trainer"]["max_epochs"] == 1 and config["seed_everything"] == 0
    # The metrics, as metrics.json has them.
    for name in ("val/acc", "val/loss", "test/acc"):
        assert summary["summary"][name] == pytest.approx(metrics(run_dir)[name])

    record = run_record(run_dir)
    assert (record["run_group"], record["job_type"]) == ("mystudy", "sweep")
    assert record["tags"] == ["lr-sweep"]
    attached = next(wandb_dir.glob("offline-run-*/files")) / ATTACHED_CONFIG
    assert attached.read_text() == (run_dir / "config.yaml").read_text()
    assert not (tmp_path / "wandb").exists()  # nothing in the working directory


def test_two_fits_into_one_root_make_two_runs(tmp_path):
    root = tmp_path / "runs"
    xor = ["fit", "--config", str(CONFIGS / "xor.yaml"), *FAST, *WANDB, "--test_after_fit", "false"]
    first, second = run(*xor, root=root), run(*xor, root=root)
    assert first != second and sorted(root.iterdir()) == sorted([first, second])
    ids = []
    for run_dir in (first, second):
        assert metrics(run_dir)["status"] == "completed"
        summary = json.loads(leet(run_dir, "--summary", "--json"))
        assert summary["state"] == "finished" and summary["name"] == run_dir.name
        assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1
        ids.append(summary["run_id"])
    assert ids[0] != ids[1]


def built_wandb_logger(tmp_path: Path, *args: str):
    """Parse and build everything as ``fit`` would, without running: the default logger
    (configs/mnist.yaml keeps it; nothing is read from the data folder until fit)."""
    cli = NetscopeCLI(args=["--config", str(CONFIGS / "mnist.yaml"),
                            "--trainer.default_root_dir", str(tmp_path / "runs"), *args], run=False)
    return cli.trainer.loggers[0]


def test_online_with_credentials_reaches_wandb_init(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("WANDB_API_KEY", API_KEY)
    logger = built_wandb_logger(tmp_path, "--trainer.logger.init_args.group", "mystudy")
    # ``_wandb_init`` is the dict WandbLogger passes to ``wandb.init(**...)`` as is.
    init = logger._wandb_init
    assert init["mode"] == "online" and init["group"] == "mystudy" and init["project"] == "netscope"
    assert init["dir"].startswith(str(tmp_path / "runs")) and init["settings"] is None
    assert logger._log_model is True  # by default the best checkpoint becomes an artifact
    assert "W&B is offline" not in "".join(capfd.readouterr())


@pytest.mark.parametrize(("args", "env", "mode"), [
    ([], {}, "offline"),
    (["--trainer.logger.init_args.offline", "true"], {"WANDB_API_KEY": API_KEY}, "offline"),
    (["--trainer.logger.init_args.mode", "disabled"], {}, "disabled"),
    ([], {"WANDB_MODE": "dryrun", "WANDB_API_KEY": API_KEY}, "offline"),
])
def test_offline_turns_log_model_off(tmp_path, monkeypatch, args, env, mode):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    logger = built_wandb_logger(tmp_path, "--trainer.logger.init_args.log_model", "all", *args)
    assert logger._wandb_init["mode"] == mode
    assert logger._log_model is False  # WandbLogger(offline=True, log_model=True) would raise
    assert logger._offline is False  # mode goes to wandb.init, not into os.environ["WANDB_MODE"]


def test_online_asked_for_without_credentials_is_a_clear_error(tmp_path, capfd):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(CONFIGS / "xor.yaml"), *WANDB,
              "--trainer.logger.init_args.mode", "online",
              "--trainer.default_root_dir", str(tmp_path / "runs")])
    error = capfd.readouterr().err
    assert exit_info.value.code == 1 and "Traceback" not in error
    assert "no credentials were found" in error and "wandb login" in error


def env(mode: str | None = None, credentials: bool = False) -> WandbEnvironment:
    return WandbEnvironment(mode, f"WANDB_MODE={mode}", "https://api.wandb.ai", credentials)


@pytest.mark.parametrize(("requested", "environment", "mode", "log_model"), [
    (None, env(), "offline", False),  # no credentials: offline by itself
    (None, env(credentials=True), "online", True),
    (None, env("offline", credentials=True), "offline", False),  # WANDB_MODE respected
    (None, env("dryrun", credentials=True), "offline", False),  # wandb's old name
    (None, env("disabled"), "disabled", False),
    ("offline", env(credentials=True), "offline", False),  # the logger's own setting
    ("disabled", env("online", credentials=True), "disabled", False),  # logger over env
    ("online", env("offline", credentials=True), "online", True),
])
def test_decide(requested, environment, mode, log_model):
    choice = decide(requested, True, environment)
    assert (choice.mode, choice.log_model) == (mode, log_model)


@pytest.mark.parametrize(("requested", "environment"), [
    ("online", env()), (None, env("online")), (None, env("sideways", credentials=True)),
])
def test_decide_refuses_what_cannot_work(requested, environment):
    with pytest.raises(UserError, match="W&B"):
        decide(requested, False, environment)


def write_netrc(machine: str) -> None:
    netrc = Path.home() / ".netrc"
    netrc.write_text(f"machine {machine}\n  login user\n  password {API_KEY}\n")
    netrc.chmod(0o600)


def test_environment_reads_what_wandb_init_reads(tmp_path, monkeypatch):
    empty_home = wandb_environment()
    assert empty_home.mode is None and not empty_home.has_credentials
    write_netrc("api.wandb.ai")  # what `wandb login` writes
    assert wandb_environment().has_credentials
    monkeypatch.setenv("WANDB_BASE_URL", "http://localhost:8080")  # a local server: another host
    assert not wandb_environment().has_credentials
    write_netrc("localhost:8080")
    assert wandb_environment().has_credentials
    (Path.home() / ".netrc").unlink()
    monkeypatch.setenv("WANDB_API_KEY", API_KEY)
    assert wandb_environment().has_credentials
    # `wandb offline` writes mode = offline into ./wandb/settings; WANDB_MODE goes first.
    (tmp_path / "wandb").mkdir()
    (tmp_path / "wandb" / "settings").write_text("[default]\nmode = offline\n")
    assert wandb_environment().mode == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    environment = wandb_environment()
    assert (environment.mode, environment.mode_source) == ("disabled", "WANDB_MODE=disabled")
