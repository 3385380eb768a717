"""Optional heavy libraries, imported only by the renderer that needs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import CorsflowError


class MissingDependency(CorsflowError, ImportError):
    """A renderer needs a library that is not installed."""


_PACKAGES = {"pandas": "pandas", "matplotlib": "matplotlib"}


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or fail with one line saying what to install and why."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        package = _PACKAGES.get(module.split(".")[0], module.split(".")[0])
        raise MissingDependency(
            f"{purpose} need {package}, which is not installed ({e}); "
            f"install it with: python -m pip install {package}"
        ) from None
