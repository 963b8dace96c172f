"""Waymark: a self-hosted collaborative map platform."""

__version__ = "0.1.0"
