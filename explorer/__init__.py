"""Attention Explorer: a desktop application for teaching sequence-to-sequence models and attention."""

__version__ = "0.1.0"
