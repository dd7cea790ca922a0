"""Training: one trainer for scikit-learn, LightGBM, XGBoost and PyTorch; Optuna search."""

from ghaf.training.base import TrainData, TrainResult, TrainSpec
from ghaf.training.hpo import TuneResult, tune
from ghaf.training.trainer import train

__all__ = ["TrainData", "TrainResult", "TrainSpec", "TuneResult", "train", "tune"]
