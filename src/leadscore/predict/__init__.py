"""Predictive scoring: features, estimators, calibration, reasons, thresholds, learned points.

The pure core behind ``leadscore train|predict|evaluate|thresholds|compare`` and
``leadscore model learn`` (see ``docs/predictive.md``). The service uses
:class:`Predictor`::

    model = Predictor.load("models/demo")
    prediction = model.predict_lead(lead, events)   # probability, score, reasons
"""

from leadscore.predict.data import LeadData, load_data
from leadscore.predict.errors import ModelDirError, TrainingDataError
from leadscore.predict.estimators import LeadScorer
from leadscore.predict.features import LeadFeatures
from leadscore.predict.predictor import FORMAT_VERSION, Prediction, Predictor
from leadscore.predict.reasons import Reason
from leadscore.predict.training import TrainOptions, TrainResult, evaluate, train

__all__ = [
    "FORMAT_VERSION",
    "LeadData",
    "LeadFeatures",
    "LeadScorer",
    "ModelDirError",
    "Prediction",
    "Predictor",
    "Reason",
    "TrainOptions",
    "TrainResult",
    "TrainingDataError",
    "evaluate",
    "load_data",
    "train",
]
