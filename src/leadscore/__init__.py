"""leadscore: open-source lead scoring."""

__version__ = "0.1.0"
