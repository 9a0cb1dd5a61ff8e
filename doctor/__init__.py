"""The doctor: says in words what is wrong with a training run, where, since when, and what
to try. Pure logic over a model, a batch and a run's logged history; the Lightning side is
``callbacks.Doctor`` and ``python main.py check``."""

from netscope.doctor.findings import Finding
from netscope.doctor.thresholds import Thresholds

__all__ = ["Finding", "Thresholds"]
