"""codeb-infra: blue-green, zero-drop deploys on servers you own, as pyinfra operations."""

__version__ = "0.1.0"
