"""corsflow: what the browser did with every cross-origin request in a captured session.

    import corsflow
    a = corsflow.load("session.har")        # DataFrames, charts, explanations
    report = corsflow.analyze_paths(["capture.pcap"], engine="firefox")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Analysis", "CorsAnalysis", "Report", "__version__", "analyze_paths", "load"]

if TYPE_CHECKING:
    from .analysis import Analysis, Report, analyze_paths
    from .api import CorsAnalysis, load


def __getattr__(name: str) -> Any:
    # Imported on first use, so `corsflow --version` or the mitmproxy addon do not pay for
    # pandas and matplotlib.
    if name in ("Analysis", "Report", "analyze_paths"):
        from . import analysis

        return getattr(analysis, name)
    if name in ("CorsAnalysis", "load"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'corsflow' has no attribute {name!r}")
