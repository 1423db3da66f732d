"""The release number, read by ``orchestrator --version`` and by setup.cfg (``attr:``)."""
__version__ = "0.1.0"
