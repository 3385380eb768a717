"""corsflow: what the browser did with every cross-origin request in a captured session.

    import corsflow
    a = corsflow.load("session.har")        # DataFrames, charts, explanations
    report = corsflow.analyze_paths(["capture.pcap"], engine="firefox")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Analysis", "CorsAnalysis", "FleetAnalysis", "Report", "__version__", "analyze_fleet",
           "analyze_paths", "load", "load_fleet"]

if TYPE_CHECKING:
    from .analysis import Analysis, Report, analyze_paths
    from .api import CorsAnalysis, FleetAnalysis, load, load_fleet
    from .fleet import analyze_fleet


def __getattr__(name: str) -> Any:
    # Imported on first use, so `corsflow --version` or the mitmproxy addon do not pay for
    # pandas and matplotlib.
    if name in ("Analysis", "Report", "analyze_paths"):
        from . import analysis

        return getattr(analysis, name)
    if name == "analyze_fleet":
        from . import fleet

        return fleet.analyze_fleet
    if name in ("CorsAnalysis", "FleetAnalysis", "load", "load_fleet"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'corsflow' has no attribute {name!r}")
