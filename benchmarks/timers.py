"""The benchmarks' clocks: a timed window's images, wall and CPU seconds and page faults,
and its steps one by one (logging steps apart from the others).

CPU seconds and page faults are the process's own (``resource.getrusage``): a window that
takes longer because the process did more work (a garbage collection, fresh pages for
memory the previous fit still holds) shows it there, while one slowed by another job on
the machine shows only in the wall clock. W&B's writer is another process and not counted.
"""

import gc
import resource
import statistics
import time
from dataclasses import dataclass, field

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from netscope.callbacks.diagnostic import is_due


def synchronize(device: torch.device) -> None:
    """Wait for the device to finish its queued work (a GPU runs ahead of the host), so
    that a clock read after it times the work, not its launch. A no-op on a CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def collect_garbage(keep: bool) -> int:
    """Collect the garbage the previous measurement left (its trainer, model and data sit
    in reference cycles until a collection); the number of unreachable objects found.

    A benchmark calls it before each variant so that no variant pays for freeing, or
    paging around, what an earlier one left; ``keep`` (``--keep_garbage``) skips it, to
    show the effect (the next variant then runs beside that garbage)."""
    return 0 if keep else gc.collect()


@dataclass(frozen=True)
class Reading:
    """The process's clocks at one moment."""

    wall: float
    cpu: float
    minor_faults: int
    major_faults: int

    @classmethod
    def now(cls) -> "Reading":
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return cls(time.perf_counter(), time.process_time(), usage.ru_minflt, usage.ru_majflt)


#: What a timed step was: a logging step (diagnostics and loggers due), the last step of
#: an epoch (epoch-end work: histograms, figures), or an ordinary step.
LOG, EPOCH_END, OTHER = "log", "epoch_end", "other"


@dataclass
class Window:
    """A timed window: its images, its clocks from start to end, and its steps' wall and
    CPU seconds with what each was (:data:`LOG`, :data:`EPOCH_END`, :data:`OTHER`). On a
    machine shared with other jobs the CPU seconds are the steadier measure (one thread:
    they equal the wall clock when the process has its core to itself)."""

    images: int = 0
    start: Reading | None = None
    end: Reading | None = None
    steps: list[tuple[str, float, float]] = field(default_factory=list)  # kind, wall, CPU
    parameters: int = 0  # of the model timed, for the record

    def open(self) -> None:
        self.start = Reading.now()

    def close(self) -> None:
        self.end = Reading.now()

    @property
    def wall_s(self) -> float:
        return self.end.wall - self.start.wall

    @property
    def images_per_second(self) -> float:
        return self.images / self.wall_s

    def add_step(self, kind: str, start: Reading) -> None:
        """Record a step of ``kind`` that began at ``start`` and ends now."""
        end = Reading.now()
        self.steps.append((kind, end.wall - start.wall, end.cpu - start.cpu))

    def step_ms(self, kind: str, cpu: bool = False) -> float | None:
        """The median wall (or ``cpu``) milliseconds of the window's steps of ``kind``
        (None if none)."""
        times = [c if cpu else w for k, w, c in self.steps if k == kind]
        return 1000 * statistics.median(times) if times else None

    def summary(self) -> dict[str, float | int | None]:
        """The window as JSON: images/s, wall and CPU seconds, page faults, step medians."""
        cpu_s = self.end.cpu - self.start.cpu
        return {"img_s": self.images_per_second, "cpu_img_s": self.images / cpu_s,
                "parameters": self.parameters, "wall_s": self.wall_s, "cpu_s": cpu_s,
                "minor_faults": self.end.minor_faults - self.start.minor_faults,
                "major_faults": self.end.major_faults - self.start.major_faults,
                "log_step_ms": self.step_ms(LOG), "step_ms": self.step_ms(OTHER),
                "epoch_end_step_ms": self.step_ms(EPOCH_END),
                "log_step_cpu_ms": self.step_ms(LOG, cpu=True),
                "step_cpu_ms": self.step_ms(OTHER, cpu=True),
                "steps": {kind: sum(k == kind for k, *_ in self.steps)
                          for kind in (LOG, OTHER, EPOCH_END)}}


class StepTimer(Callback):
    """Times a Lightning fit's training batches after the first ``warmup`` ones.

    The window (images/s, CPU, faults) runs from the end of batch ``warmup`` to the end of
    the last; each timed batch includes everything Lightning and the callbacks do around
    it. Each step is also timed alone, from its ``on_train_batch_start`` to the next
    one's, so that a logging step carries its own loggers' writes (Lightning writes them
    after ``on_train_batch_end``) and an epoch's last step its epoch-end work; the fit's
    last step has no next one and is not timed alone. The device is synchronized only
    where the clock is read (after the warm-up and after the last step; on a GPU, pass
    ``per_step=True`` to synchronize at every step start as well, for the step times)."""

    def __init__(self, warmup: int, per_step: bool = False) -> None:
        self.warmup = warmup
        self.per_step = per_step
        self.window = Window()
        self._step: tuple[str, Reading] | None = None  # (kind, start) of the step running

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch,
                             batch_idx: int) -> None:
        if self.per_step:
            synchronize(pl_module.device)
        if self._step is not None:
            self.window.add_step(*self._step)
        self._step = None
        if trainer.global_step >= self.warmup:
            kind = LOG if is_due(trainer, trainer.log_every_n_steps) else OTHER
            self._step = (kind, Reading.now())

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        if self._step is not None and self._step[0] == OTHER and trainer.is_last_batch:
            self._step = (EPOCH_END, self._step[1])
        if trainer.global_step == self.warmup:
            synchronize(pl_module.device)
            self.window.open()
        elif trainer.global_step > self.warmup:
            self.window.images += len(batch[1])
            if trainer.global_step == trainer.max_steps:
                synchronize(pl_module.device)
                self.window.close()
                self._step = None  # no next step to end it

    @property
    def images_per_second(self) -> float:
        return self.window.images_per_second
