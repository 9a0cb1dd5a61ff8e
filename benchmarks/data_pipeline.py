"""Is the data pipeline ever the bottleneck? Augmented images/s of the datamodule's
pipeline against the model's training images/s, for a config (target: 20x or more).

    python benchmarks/data_pipeline.py --json pipeline.json     # configs/cifar.yaml
    python benchmarks/data_pipeline.py --batches 5 --repeats 1  # a quick look

The pipeline is what a training batch goes through: indexing the in-memory uint8 split
with a shuffled batch of indices (``TensorLoader``), then the datamodule's normalization
and augmentations (flip, translate, cutout as configured). The model side is one training
step (forward, loss, backward, optimizer step) under the trainer's precision, on batches
the pipeline made. The two alternate and repeat; medians are reported.
"""

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import torch  # noqa: E402
from lightning.pytorch import seed_everything  # noqa: E402

from benchmarks.common import (  # noqa: E402
    autocast,
    benchmark_parser,
    build,
    device_of,
    emit,
    machine,
    parse_benchmark_args,
    synchronize,
    train_step,
)


def pipeline_images_per_second(data, batches: int) -> float:
    """Images/s of loading and augmenting ``batches`` training batches."""
    loader = iter(data.train_dataloader())
    start, images = time.perf_counter(), 0
    for _ in range(batches):
        inputs, _, *extra = next(loader)
        inputs = data.augment(data.prepare_inputs(inputs), *extra)
        images += len(inputs)
    return images / (time.perf_counter() - start)


def model_images_per_second(cli, batch: tuple[torch.Tensor, torch.Tensor], steps: int) -> float:
    """Images/s of ``steps`` training steps of the config's model and optimizer."""
    device = device_of(cli)
    model = cli.model.to(device).train()
    optimizer = cli.model.configure_optimizers()[0][0]
    inputs, targets = model.prepare_inputs(batch[0].to(device)), batch[1].to(device)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(model, optimizer, inputs, targets, autocast(cli))
    synchronize(device)
    return steps * len(targets) / (time.perf_counter() - start)


def main() -> None:
    parser = benchmark_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=40, help="pipeline batches per sample")
    parser.add_argument("--steps", type=int, default=5, help="model steps per sample")
    parser.add_argument("--repeats", type=int, default=5)
    args = parse_benchmark_args(parser)

    seed_everything(0, verbose=False)
    cli = build(args.config, args.data_dir, "--trainer.logger", "false", accelerator=args.accelerator)
    data = cli.datamodule
    data.setup("fit")
    inputs, targets, *extra = next(iter(data.train_dataloader()))
    batch = (data.augment(data.prepare_inputs(inputs), *extra), targets)
    model_images_per_second(cli, batch, 1)  # warm-up (allocations, kernel selection)
    pipeline, model = [], []
    for _ in range(args.repeats):
        pipeline.append(pipeline_images_per_second(data, args.batches))
        model.append(model_images_per_second(cli, batch, args.steps))
    result = {
        "pipeline_img_s": statistics.median(pipeline),
        "model_train_img_s": statistics.median(model),
        "ratio": statistics.median(pipeline) / statistics.median(model),
        "samples": {"pipeline_img_s": pipeline, "model_train_img_s": model},
        "settings": {"config": str(args.config), "batch_size": data.batch_size,
                     "flip": data.flip, "flip_mode": data.flip_mode, "translate": data.translate,
                     "cutout": data.cutout, "precision": str(cli.trainer.precision),
                     "machine": machine()},
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()
