"""Record samples/chromium-session.netlog.json: Chromium's own NetLog of a few scenarios.

    python -m tests.browser.record_netlog_sample

The log is Chromium's as written (capture mode Everything), except that the command line
in ``constants.clientInfo`` (temporary paths of this machine) is left out.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from .harness import Captures, run_session
from .scenarios import all_scenarios

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "chromium-session.netlog.json"
SCENARIOS = ("simple-get", "no-acao", "preflight-no-acao", "method-not-allowed",
             "preflighted-redirect-307", "maxage-600")


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "session.netlog.json"
        scenarios = [s for s in all_scenarios() if s.name in SCENARIOS]
        run_session("direct", Captures(netlog=path, workdir=Path(d)), scenarios)
        text = path.read_text()
    head, sep, rest = text.partition('\n"events": [\n')
    constants = json.loads(head.rstrip().rstrip(",") + "}")
    constants["constants"]["clientInfo"].pop("command_line", None)
    lines = rest.split("\n")
    SAMPLE.write_text(json.dumps(constants, separators=(",", ":"))[:-1] + ",\n" + sep[1:]
                      + "\n".join(lines))
    print(f"wrote {SAMPLE} ({SAMPLE.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
