"""KTRDR: trading-strategy research platform, observable end to end."""

__version__ = "0.1.0"
