"""Callbacks: the run summary, console output, and the diagnostics that look inside training.

Every diagnostic is one callback with one job, configured by its constructor, so a config
lists them under ``trainer.callbacks`` (``class_path: callbacks.GradientNorms``).
"""

from callbacks.activations import ActivationStatistics
from callbacks.checkpoint import FiniteModelCheckpoint
from callbacks.console import EpochLinePrinter
from callbacks.divergence import DivergenceGuard
from callbacks.doctor import Doctor
from callbacks.evaluation_report import EvaluationReport
from callbacks.figures import TrainingFigures
from callbacks.gradient_norms import GradientNorms
from callbacks.histograms import ParameterHistograms
from callbacks.learning_rate import LearningRate
from callbacks.lookahead import Lookahead
from callbacks.prediction_writer import PredictionWriter
from callbacks.resume import ResumeState
from callbacks.run_summary import RunSummary
from callbacks.weight_norms import WeightNorms

__all__ = [
    "ActivationStatistics",
    "DivergenceGuard",
    "Doctor",
    "EpochLinePrinter",
    "EvaluationReport",
    "FiniteModelCheckpoint",
    "GradientNorms",
    "LearningRate",
    "Lookahead",
    "ParameterHistograms",
    "PredictionWriter",
    "ResumeState",
    "RunSummary",
    "TrainingFigures",
    "WeightNorms",
]
