"""corsflow: what the browser did with every cross-origin request in a captured session."""

__version__ = "0.1.0"
