"""ImageFolderDataModule and the image cache: mixed sizes and modes, unreadable files,
empty classes, the seeded stratified split, the folder's own splits, read-only data and
cache invalidation."""

import csv
import json
import os
import stat

import numpy as np
import pytest
import torch
from PIL import Image

from main import main
from netscope.core.errors import UserError
from netscope.datamodules import ImageFolderDataModule
from netscope.datamodules.image_cache import default_cache_dir, read_image
from tests.helpers import CONFIGS, run
from tests.image_folders import COLOURS, make_class_folder, save


def snapshot(root):
    """Every path under ``root`` with its size and modification time."""
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def test_modes_and_sizes_become_rgb_of_one_size(tmp_path):
    folder = tmp_path / "modes"
    for mode in ("RGB", "RGBA", "CMYK", "L", "P"):
        name = "cmyk.jpg" if mode == "CMYK" else f"{mode}.png"
        save(folder / name, (200, 200, 200), (40, 24), mode, seed=0)
    for path in folder.iterdir():
        pixels = read_image(path, 16)
        assert pixels.shape == (16, 16, 3) and pixels.dtype == np.uint8
        assert abs(pixels.mean() - 200) < 12, path  # a light grey in every mode
    Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(folder / "deep.png")  # 16-bit grey
    assert read_image(folder / "deep.png", None).mean() == 40000 >> 8


def test_decodes_folder_skips_corrupt_file_with_warning(tmp_path):
    root = make_class_folder(tmp_path / "shapes")
    data = ImageFolderDataModule(str(root), image_size=16, batch_size=4)
    assert data.class_names == ["alpha", "beta", "gamma"]
    assert (data.num_classes, data.input_shape) == (3, (3, 16, 16))
    with pytest.warns(UserWarning, match=r"Skipped the image '.*alpha/broken\.jpg'"):
        data.setup("fit")
    images = torch.cat([data.splits[s][0] for s in ("train", "val", "test")])
    labels = torch.cat([data.splits[s][1] for s in ("train", "val", "test")])
    assert images.shape == (24, 3, 16, 16) and images.dtype == torch.uint8
    assert labels.bincount().tolist() == [8, 8, 8]
    # Each class keeps its colour (red, green, blue dominant) whatever mode it was saved in.
    for label, rgb in enumerate(COLOURS.values()):
        assert images[labels == label].float().mean((0, 2, 3)).argmax() == int(np.argmax(rgb))
    # Normalization statistics come from the training split.
    train = data.splits["train"][0].double() / 255
    assert data.mean == pytest.approx(train.mean((0, 2, 3)).tolist(), abs=1e-6)
    assert data.std == pytest.approx(train.std((0, 2, 3), correction=0).tolist(), abs=1e-6)
    # Unreadable files are reported again when the images come from the cache.
    with pytest.warns(UserWarning, match="broken.jpg"):
        ImageFolderDataModule(str(root), image_size=16).setup("fit")


def test_strict_mode_and_empty_class_are_clear_errors(tmp_path, capsys):
    root = make_class_folder(tmp_path / "shapes")
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(CONFIGS / "satellite.yaml"), "--data.init_args.data_dir", str(root),
              "--data.init_args.strict", "true", "--trainer.logger", "false",
              "--trainer.default_root_dir", str(tmp_path / "runs")])
    assert exit_info.value.code == 1
    error = capsys.readouterr().err
    assert "cannot be read" in error and "broken.jpg" in error and "Traceback" not in error

    (root / "delta").mkdir()
    with pytest.raises(UserError, match=r"class folder '.*delta' has no images"):
        ImageFolderDataModule(str(root))
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "flat" / "lonely.png")
    with pytest.raises(UserError, match="no class sub-folders"):
        ImageFolderDataModule(str(tmp_path / "flat"))
    with pytest.raises(UserError, match="does not exist"):
        ImageFolderDataModule(str(tmp_path / "missing"))


def numbered_folder(root, counts):
    """Classes of 8x8 BMPs whose pixel values encode (class, index): every image unique."""
    for c, count in enumerate(counts):
        for i in range(count):
            pixels = np.zeros((8, 8, 3), np.uint8)
            pixels[..., 0], pixels[..., 1] = c, i
            (root / f"c{c}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(root / f"c{c}" / f"{i:03d}.bmp")
    return root


def split_ids(data):
    """``{split: set of (class, index)}`` read back from the pixels."""
    return {name: {(int(x[0, 0, 0]), int(x[1, 0, 0])) for x in images}
            for name, (images, _) in data.splits.items()}


def test_split_is_seeded_stratified_and_complete(tmp_path):
    root = numbered_folder(tmp_path / "numbers", [40, 20, 60])
    splits = []
    for seed in (0, 0, 1):
        data = ImageFolderDataModule(str(root), image_size=8, split_seed=seed)
        data.setup("fit")
        splits.append(split_ids(data))
        for name, (images, labels) in data.splits.items():
            assert all(int(x[0, 0, 0]) == int(y) for x, y in zip(images, labels))  # labels match
    first, again, other = splits
    assert first == again  # same seed, same split
    assert first != other
    assert not (first["train"] & first["val"]) and not (first["train"] & first["test"])
    assert not (first["val"] & first["test"])
    assert len(first["train"] | first["val"] | first["test"]) == 120
    for name, share in (("train", 0.7), ("val", 0.15), ("test", 0.15)):
        per_class = [sum(1 for c, _ in first[name] if c == k) for k in range(3)]
        assert per_class == [round(share * n) for n in (40, 20, 60)], (name, per_class)


def test_uses_the_folders_own_splits(tmp_path):
    root = tmp_path / "presplit"
    numbered_folder(root / "train", [10, 10])
    numbered_folder(root / "test", [3, 4])
    data = ImageFolderDataModule(str(root), image_size=8)
    assert data.class_names == ["c0", "c1"]
    data.setup("fit")
    assert data.splits["test"][1].bincount().tolist() == [3, 4]
    assert len(data.splits["train"][1]) + len(data.splits["val"][1]) == 20  # val carved from train
    assert data.splits["val"][1].bincount().tolist() == [2, 2]  # 15% of each class

    (root / "test" / "c9").mkdir()
    Image.new("RGB", (8, 8)).save(root / "test" / "c9" / "x.png")
    with pytest.raises(UserError, match="c9"):
        ImageFolderDataModule(str(root), image_size=8).setup("fit")


def test_read_only_data_folder_is_never_written(tmp_path):
    root = make_class_folder(tmp_path / "shapes", corrupt=False)
    before = snapshot(root)
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        run_dir = run("fit", "--config", str(CONFIGS / "satellite.yaml"),
                      "--data.init_args.data_dir", str(root), "--data.init_args.image_size", "16",
                      "--trainer.max_epochs", "1", "--trainer.logger", "false",
                      "--trainer.enable_model_summary", "false", root=tmp_path / "runs")
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    assert snapshot(root) == before
    assert (run_dir / "metrics.json").exists()
    assert list((default_cache_dir() / "images").glob("shapes-*-16px-*.pt"))


def test_cache_is_used_until_a_file_changes(tmp_path):
    root = numbered_folder(tmp_path / "numbers", [6, 6])
    target = root / "c0" / "000.bmp"

    def first_pixel():
        data = ImageFolderDataModule(str(root), image_size=8, val_fraction=0.2, test_fraction=0.2)
        data.setup("fit")
        everything = torch.cat([data.splits[s][0] for s in ("train", "val", "test")])
        return sorted(int(x[2, 0, 0]) for x in everything)

    assert first_pixel() == [0] * 12
    caches = list((default_cache_dir() / "images").glob("*.pt"))
    assert len(caches) == 1
    # Same size and modification time, new content: the cache (rightly) cannot tell.
    times = target.stat()
    pixels = np.zeros((8, 8, 3), np.uint8)
    pixels[..., 2] = 99
    Image.fromarray(pixels).save(target)
    os.utime(target, ns=(times.st_atime_ns, times.st_mtime_ns))
    assert first_pixel() == [0] * 12
    # Touched: decoded again, the new content seen, the stale cache replaced.
    os.utime(target, ns=(times.st_atime_ns, times.st_mtime_ns + 10**9))
    assert first_pixel() == [0] * 11 + [99]
    now = list((default_cache_dir() / "images").glob("*.pt"))
    assert len(now) == 1 and now != caches


def test_vertical_flip_only_while_training(tmp_path):
    root = numbered_folder(tmp_path / "numbers", [4, 4])
    data = ImageFolderDataModule(str(root), image_size=8, vflip=True)
    images = torch.arange(64.0).view(1, 1, 8, 8).repeat(200, 3, 1, 1)
    flipped = data.augment(images)
    is_flipped = (flipped == images.flip(-2)).flatten(1).all(1)
    unchanged = (flipped == images).flatten(1).all(1)
    assert (is_flipped | unchanged).all() and 50 < is_flipped.sum() < 150


def add_hostile_entries(folder):
    """Entries that look like images but cannot be read as one; ``{name: reason fragment}``."""
    folder.mkdir(parents=True, exist_ok=True)
    os.symlink("self.jpg", folder / "self.jpg")  # a loop
    os.symlink("nowhere.jpg", folder / "gone.jpg")  # dangling
    os.mkfifo(folder / "pipe.png")  # opening it would wait forever
    (folder / "album.jpg").mkdir()
    Image.new("RGB", (8, 8)).save(folder / "album.jpg" / "inside.png")
    with open(os.fsencode(folder) + b"/caf\xe9.png", "wb") as file:  # Latin-1 bytes: not UTF-8
        Image.new("RGB", (8, 8)).save(file, format="PNG")
    Image.new("RGB", (40, 40)).save(folder / "huge.png")  # over max_pixels 1000 below
    expected = {"self.jpg": "loops", "gone.jpg": "does not exist", "pipe.png": "FIFO",
                "caf\\xe9.png": "not valid UTF-8", "huge.png": "--data.init_args.max_pixels"}
    if os.geteuid() != 0:  # root reads any file whatever its mode
        Image.new("RGB", (8, 8)).save(folder / "locked.png")
        (folder / "locked.png").chmod(0)
        expected["locked.png"] = "permission denied"
    return expected


def skip_warnings(record):
    return [str(w.message) for w in record if "Skipped the image" in str(w.message)]


def test_hostile_entries_are_skipped_and_named_once_each_by_fit_and_predict(tmp_path):
    root = make_class_folder(tmp_path / "shapes", per_class=6, corrupt=False)
    expected = add_hostile_entries(root / "alpha")
    expected["album.jpg"] = "a folder"  # in a class folder, sub-folders are not read
    args = ["--config", str(CONFIGS / "satellite.yaml"), "--data.init_args.data_dir", str(root),
            "--data.init_args.image_size", "16", "--data.init_args.max_pixels", "1000",
            "--trainer.max_epochs", "1", "--trainer.logger", "false",
            "--trainer.enable_model_summary", "false", "--test_after_fit", "false"]
    with pytest.warns(UserWarning) as record:
        fit_dir = run("fit", *args, root=tmp_path / "runs")
    assert json.loads((fit_dir / "metrics.json").read_text())["status"] == "completed"
    messages = skip_warnings(record)
    for name, reason in expected.items():
        named = [m for m in messages if f"alpha/{name}'" in m]
        assert len(named) == 1 and reason in named[0], (name, messages)
    assert len(messages) == len(expected)

    # predict reads sub-folders (album.jpg/inside.png is an image to classify), skips the
    # rest, and writes every name faithfully: commas, quotes, line breaks, spaces, non-ASCII.
    new = tmp_path / "new"
    odd = ["comma, in it.png", 'a "quoted" name.png', "line\nbreak.png", " spaces .png", "über ☃.png",
           "=1+1.png"]
    for name in odd:
        save(new / name, (220, 40, 40), (10, 10), "RGB", seed=1)
    unreadable_expected = add_hostile_entries(new)
    checkpoint = next((fit_dir / "checkpoints").glob("last.ckpt"))
    with pytest.warns(UserWarning) as record:
        predict_dir = run("predict", *args, "--ckpt_path", str(checkpoint),
                          "--data.init_args.predict_dir", str(new), root=tmp_path / "runs")
    messages = skip_warnings(record)
    assert len(messages) == len(unreadable_expected), messages
    with open(predict_dir / "predictions.csv", newline="", encoding="utf-8") as file:
        files = sorted(row["file"] for row in csv.DictReader(file))
    assert files == sorted([str(new / name) for name in odd] + [str(new / "album.jpg" / "inside.png")])
    with open(predict_dir / "predictions_unreadable.csv", newline="", encoding="utf-8") as file:
        unreadable = {row["file"]: row["error"] for row in csv.DictReader(file)}
    assert sorted(unreadable) == sorted(str(new / name) for name in unreadable_expected)
    for name, reason in unreadable_expected.items():
        assert reason in unreadable[str(new / name)], (name, unreadable)


def test_a_class_folder_of_unreadable_entries_only_says_why(tmp_path):
    root = make_class_folder(tmp_path / "shapes", per_class=2, corrupt=False)
    for file in (root / "gamma").iterdir():
        file.unlink()
    os.symlink("loop.png", root / "gamma" / "loop.png")
    with pytest.raises(UserError, match=r"'.*gamma' has no images .* that can be read: "
                                        r".*loop\.png \(a symbolic link that loops"):
        ImageFolderDataModule(str(root))


def test_the_pixel_cap_skips_before_decoding(tmp_path):
    """A PNG that declares 9000 x 9000 in 69 bytes: refused from its header (a decode would
    fail, "truncated"), with the option to raise the cap named."""
    from tests.test_hardening import png_header

    root = numbered_folder(tmp_path / "numbers", [3, 3])
    (root / "c0" / "bomb.png").write_bytes(png_header(9000, 9000))
    data = ImageFolderDataModule(str(root), image_size=8, val_fraction=0.3, test_fraction=0.3)
    with pytest.warns(UserWarning, match=r"bomb\.png': 9000x9000 pixels, over the cap of 16777216 "
                                         r"\(--data.init_args.max_pixels"):
        data.setup("fit")
    assert sum(len(labels) for _, labels in data.splits.values()) == 6
    with pytest.raises(UserError, match="max_pixels .* is below image_size"):
        ImageFolderDataModule(str(root), image_size=64, max_pixels=1000)
