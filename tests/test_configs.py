"""Every shipped config runs, shortened, through ``main`` as a user would type it.

Each config trains two short epochs on small data of its kind (generated, so this runs on a
clean clone), tests its best checkpoint, and leaves the run directory the contract
describes: ``config.yaml``, ``checkpoints/``, ``metrics.json`` with the test metrics, the
CSV history with the learning rate, and the diagnostics' figures.
"""

from pathlib import Path

import pytest

from tests.helpers import CONFIGS, make_mnist, metrics, run
from tests.image_folders import make_class_folder

SHORT = ["--trainer.max_epochs", "2", "--trainer.limit_train_batches", "3",
         "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1",
         "--trainer.log_every_n_steps", "1", "--trainer.logger", "false",
         "--trainer.enable_model_summary", "false"]


def data_for(config: str, tmp_path: Path, tiny_cifar: Path) -> list[str]:
    """Arguments pointing the config at small data of the kind it expects."""
    match config:
        case "xor":
            return []
        case "mnist":
            return ["--data.init_args.data_dir", str(make_mnist(tmp_path / "mnist", 600, 64))]
        case "edge_of_stability":  # the whole subset is one batch
            return ["--data.init_args.data_dir", str(make_mnist(tmp_path / "mnist", 600, 64)),
                    "--data.init_args.train_size", "200", "--data.init_args.batch_size", "200"]
        case "fashion_mnist":
            folder = make_mnist(tmp_path / "fashion", 600, 64, name="FashionMNIST")
            return ["--data.init_args.data_dir", str(folder)]
        case "cifar":
            return ["--data.init_args.data_dir", str(tiny_cifar),
                    "--data.init_args.batch_size", "4",
                    "--model.init_args.widths", "[16, 32, 32]"]  # the recipe, narrower
        case "satellite":
            folder = make_class_folder(tmp_path / "images", per_class=6, corrupt=False)
            return ["--data.init_args.data_dir", str(folder), "--data.init_args.image_size", "16",
                    "--data.init_args.batch_size", "4"]
        case "tabular":
            table = tmp_path / "table.csv"
            rows = [f"{i % 5},{(i * 7) % 11},{['a', 'b', 'c'][i % 3]}" for i in range(90)]
            table.write_text("x,y,label\n" + "\n".join(rows) + "\n")
            return ["--data.init_args.data_dir", str(table)]
    raise AssertionError(f"no test data for configs/{config}.yaml: add it here")


def test_every_shipped_config_is_tested() -> None:
    shipped = {path.stem for path in CONFIGS.glob("*.yaml")}
    assert shipped == {"xor", "mnist", "fashion_mnist", "cifar", "satellite", "tabular",
                       "edge_of_stability"}


@pytest.mark.parametrize("config", ["xor", "mnist", "fashion_mnist", "cifar", "satellite", "tabular",
                                    "edge_of_stability"])
def test_shipped_config_runs_shortened(config: str, tmp_path: Path, tiny_cifar: Path) -> None:
    run_dir = run("fit", "--config", str(CONFIGS / f"{config}.yaml"),
                  *data_for(config, tmp_path, tiny_cifar), *SHORT, root=tmp_path / "runs")
    result = metrics(run_dir)
    assert result["status"] == "completed", result.get("reason")
    assert "test/acc" in result and result["global_step"] > 0
    assert (run_dir / "config.yaml").exists() and list((run_dir / "checkpoints").glob("*.ckpt"))
    header = (run_dir / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    # one rate, or one per parameter group (MuonSGD's two parts in cifar.yaml: lr/pg1, lr/pg2)
    assert ("lr" in header or "lr/pg1" in header) and "grad_norm/total" in header
    assert (run_dir / "grad_norms.png").exists()
