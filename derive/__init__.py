"""derive: symbolic derivations of transformer arithmetic (see README.md and derive.api)."""

__version__ = "0.1.0"
