"""The satellite config end to end on a tiny folder: fit (and test) write the evaluation
report (CSV, PNG, W&B table and image, TensorBoard figure and text), and predict writes
one CSV row per readable new image and names the broken one."""

import csv
import json
import subprocess

import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from netscope.core.errors import UserError
from netscope.datamodules import ImageFolderDataModule
from netscope.datamodules.image_cache import read_image
from netscope.models import ConvNet
from tests.helpers import CONFIGS, metrics, run
from tests.image_folders import make_class_folder, make_predict_folder

CLASSES = ["alpha", "beta", "gamma"]


def satellite(root) -> list[str]:
    """The satellite config on a tiny folder: small images, two short epochs."""
    return ["--config", str(CONFIGS / "satellite.yaml"), "--data.init_args.data_dir", str(root),
            "--data.init_args.image_size", "16", "--data.init_args.batch_size", "8",
            "--trainer.max_epochs", "2",
            "--trainer.enable_model_summary", "false"]


def read_csv(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_fit_report_then_predict_new_images(tmp_path):
    root = make_class_folder(tmp_path / "shapes", per_class=12)
    with pytest.warns(UserWarning, match="broken.jpg"):
        fit_dir = run("fit", *satellite(root), root=tmp_path / "runs")
    result = metrics(fit_dir)
    assert result["status"] == "completed"

    # The evaluation report: per-class CSV, confusion matrix CSV and PNG, W&B table and image.
    rows = read_csv(fit_dir / "test_per_class.csv")
    assert [r["class"] for r in rows] == [*CLASSES, "macro avg", "weighted avg"]
    support = [int(r["support"]) for r in rows[:3]]
    assert support == [2, 2, 2] and int(rows[-1]["support"]) == 6  # 15% of each class
    for row, name in zip(rows, CLASSES):
        assert float(row["recall"]) == pytest.approx(result[f"test/recall/{name}"], abs=1e-5)
    confusion = read_csv(fit_dir / "test_confusion_matrix.csv")
    counts = [[int(r[c]) for c in CLASSES] for r in confusion]
    assert [sum(r) for r in counts] == support
    assert sum(counts[i][i] for i in range(3)) / 6 == pytest.approx(result["test/acc"], abs=1e-6)
    with Image.open(fit_dir / "test_confusion_matrix.png") as figure:
        assert figure.width > 300 and figure.height > 300
    leet = subprocess.run(["wandb", "leet", "inspect", "--summary", "--json", str(fit_dir / "wandb")],
                          capture_output=True, text=True, check=True, timeout=60)
    summary = json.loads(leet.stdout)["summary"]
    assert summary["test/per_class"]["_type"] == "table-file"
    assert summary["test/confusion_matrix"]["_type"] == "image-file"  # as every figure

    # Testing the checkpoint again with TensorBoard: the figure and the table go there too.
    checkpoint = next((fit_dir / "checkpoints").glob("*.ckpt"))
    with pytest.warns(UserWarning, match="broken.jpg"):
        test_dir = run("test", *satellite(root), "--ckpt_path", str(checkpoint), "--trainer.logger",
                       "lightning.pytorch.loggers.TensorBoardLogger", root=tmp_path / "runs")
    assert (test_dir / "test_confusion_matrix.png").exists()
    events = EventAccumulator(str(next(test_dir.rglob("events.out.tfevents.*")).parent))
    events.Reload()
    assert "test/confusion_matrix" in events.Tags()["images"]
    assert "test/per_class/text_summary" in events.Tags()["tensors"]

    # Predict: one row per readable image, the broken one named.
    new = make_predict_folder(tmp_path / "new")
    with pytest.warns(UserWarning, match=r"1 file\(s\) could not be read .*new/broken\.png"):
        predict_dir = run("predict", *satellite(root), "--ckpt_path", str(checkpoint),
                          "--data.init_args.predict_dir", str(new), "--trainer.logger", "false",
                          root=tmp_path / "runs")
    assert predict_dir != fit_dir
    predictions = read_csv(predict_dir / "predictions.csv")
    assert sorted(r["file"] for r in predictions) == sorted(
        str(new / name) for name in ("new_alpha.png", "new_beta.png", "batch2/new_gamma.png"))
    unreadable = read_csv(predict_dir / "predictions_unreadable.csv")
    assert [r["file"] for r in unreadable] == [str(new / "broken.png")] and unreadable[0]["error"]

    # The probabilities are the model's, on images prepared as in training.
    saved = torch.load(checkpoint, weights_only=True)
    model = ConvNet.load_from_checkpoint(checkpoint).eval()
    state = saved["ImageFolderDataModule"]
    mean, std = torch.tensor(state["mean"]).view(3, 1, 1), torch.tensor(state["std"]).view(3, 1, 1)
    for row in predictions:
        pixels = torch.from_numpy(read_image(row["file"], 16)).permute(2, 0, 1).float() / 255
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            expected = model(((pixels - mean) / std)[None]).float().softmax(-1)[0]
        probabilities = torch.tensor([float(row[f"p_{c}"]) for c in CLASSES])
        torch.testing.assert_close(probabilities, expected, atol=2e-3, rtol=0)
        assert row["predicted_class"] == CLASSES[int(probabilities.argmax())]
        assert float(row["probability"]) == pytest.approx(probabilities.max().item(), abs=1e-6)


def test_predict_needs_matching_classes_and_a_folder(tmp_path):
    root = make_class_folder(tmp_path / "shapes", corrupt=False)
    data = ImageFolderDataModule(str(root), image_size=16)
    with pytest.raises(UserError, match="trained on the classes"):
        data.load_state_dict({"class_names": ["cat", "dog"], "image_size": 16, "mean": [0.5] * 3,
                              "std": [0.2] * 3})
    with pytest.raises(UserError, match="predict_dir"):
        data.setup("predict")
