"""Optional heavy libraries, imported only by the renderer that needs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import CorsflowError


class MissingDependency(CorsflowError, ImportError):
    """A renderer needs a library that is not installed."""


_EXTRAS = {"pandas": "notebook", "matplotlib": "notebook", "mitmproxy": "mitmproxy",
           "dask": "dask", "distributed": "dask"}
"""The extra of corsflow's package that brings each optional library."""


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or fail with one line saying what to install and why."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = module.split(".")[0]
        extra = _EXTRAS.get(top)
        how = (f"python -m pip install 'corsflow[{extra}]'" if extra
               else f"python -m pip install {top}")
        raise MissingDependency(
            f"{purpose} need {top}, which is not installed ({e}); install it with: {how}"
        ) from None
