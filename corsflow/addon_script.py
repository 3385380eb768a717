"""The file ``mitmdump -s`` loads: ``mitmdump -s "$(corsflow addon-path)"``.

mitmproxy imports a script by its path, as a top-level module, so the addon itself lives in
:mod:`corsflow.addon` and this file only exports it the way mitmproxy looks for it.
"""

import sys
from pathlib import Path

try:
    import corsflow  # noqa: F401
except ImportError:
    # A source checkout that is not installed into mitmproxy's Python: import it from here.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corsflow.addon import CorsflowAddon
from corsflow.live_browser import BrowserLauncher
from corsflow.live_web import LivePage

_analysis = CorsflowAddon()
addons = [_analysis, LivePage(_analysis), BrowserLauncher()]
