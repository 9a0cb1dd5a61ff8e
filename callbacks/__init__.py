"""Callbacks: the run summary, console output, and the diagnostics that look inside training.

Every diagnostic is one callback with one job, configured by its constructor, so a config
lists them under ``trainer.callbacks`` (``class_path: GradientNorms``, or
``netscope.callbacks.GradientNorms``); a plain Lightning script takes them all with
``Trainer(callbacks=default_callbacks())``.
"""

from netscope.callbacks.activations import ActivationStatistics
from netscope.callbacks.checkpoint import FiniteModelCheckpoint
from netscope.callbacks.console import EpochLinePrinter
from netscope.callbacks.curvature import Curvature
from netscope.callbacks.defaults import default_callbacks
from netscope.callbacks.diagnostic import Diagnostic
from netscope.callbacks.divergence import DivergenceGuard
from netscope.callbacks.doctor import Doctor
from netscope.callbacks.evaluation_report import EvaluationReport
from netscope.callbacks.figures import TrainingFigures
from netscope.callbacks.gradient_norms import GradientNorms
from netscope.callbacks.histograms import ParameterHistograms
from netscope.callbacks.learning_rate import LearningRate
from netscope.callbacks.lookahead import Lookahead
from netscope.callbacks.prediction_writer import PredictionWriter
from netscope.callbacks.resume import ResumeState
from netscope.callbacks.run_summary import RunSummary
from netscope.callbacks.weight_norms import WeightNorms

__all__ = [
    "ActivationStatistics",
    "Curvature",
    "Diagnostic",
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
    "default_callbacks",
]
