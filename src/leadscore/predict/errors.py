"""Errors of predictive scoring; all are :class:`~leadscore.errors.LeadscoreError` (exit code 2)."""

from __future__ import annotations

from leadscore.errors import LeadscoreError


class TrainingDataError(LeadscoreError):
    """The labelled leads cannot train or evaluate a model (one class, too few positives, ...)."""


class ModelDirError(LeadscoreError):
    """A predictive model directory is missing, damaged or from another format version."""
