"""Attention Explorer: a desktop application that teaches seq2seq models and attention."""

__version__ = "0.1.0"
