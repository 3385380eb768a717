"""Re-record the sample captures in ``samples/`` from a real Chromium session.

    PYTHONPATH=. python tests/browser/record_samples.py samples/

Two browser launches run the same dozen scenarios: one direct (tcpdump on loopback writes
``chromium-session.pcap``, Playwright writes ``chromium-playwright.har``) and one through
mitmdump (``chromium-session.flows`` and mitmproxy's HAR export ``chromium-session.har``).
The README beside them is rewritten with the table of what Chromium decided.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.browser.harness import Captures, Session, format_truth, run_session
from tests.browser.scenarios import Scenario, all_scenarios

SAMPLE_SCENARIOS = (
    "simple-get", "json-post", "text-plain-post", "preflight-204", "wildcards",
    "no-acao", "acao-mismatch", "actual-no-acao", "preflight-404-bare", "method-not-allowed",
    "header-not-allowed", "maxage-absent", "wildcard-cache", "cache-header-replace",
    "nocache-control", "nocache",
)

TRUTH = "chromium-session.truth.json"
"""What Chromium decided in both sessions: {"direct": ..., "proxy": ...}."""

FILES = {
    "pcap": "chromium-session.pcap",
    "playwright_har": "chromium-playwright.har",
    "flows": "chromium-session.flows",
    "mitm_har": "chromium-session.har",
}


def sample_scenarios() -> list[Scenario]:
    by_name = {s.name: s for s in all_scenarios()}
    return [by_name[n] for n in SAMPLE_SCENARIOS]


def record(out: Path) -> tuple[Session, Session]:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        direct = run_session("direct", Captures(pcap=tmp / FILES["pcap"],
                                                playwright_har=tmp / FILES["playwright_har"],
                                                workdir=tmp), sample_scenarios())
        proxy = run_session("proxy", Captures(flows=tmp / FILES["flows"],
                                              mitm_har=tmp / FILES["mitm_har"], workdir=tmp),
                            sample_scenarios())
        for name in FILES.values():
            shutil.copyfile(tmp / name, out / name)
    truth = {"direct": direct.to_json(headers=False), "proxy": proxy.to_json(headers=False)}
    (out / TRUTH).write_text(json.dumps(truth, indent=0, sort_keys=True) + "\n")
    (out / "README.md").write_text(readme(direct, proxy))
    return direct, proxy


def readme(direct: Session, proxy: Session) -> str:
    scenarios = {s.name: s for s in sample_scenarios()}
    lines = [
        "# Sample captures of a real Chromium session",
        "",
        f"Recorded with Chromium {direct.chromium_version} (Debian's package, headless,",
        "driven by Playwright) by `tests/browser/record_samples.py`; re-record them with",
        "",
        "    PYTHONPATH=. python tests/browser/record_samples.py samples/",
        "",
        "A page on `http://localhost:P1` calls `fetch()` on an API at `http://127.0.0.1:P2`",
        "(both local test servers, `tests/browser/server.py`), one scenario after the other.",
        "",
        "| file | written by |",
        "| --- | --- |",
        "| `chromium-session.pcap` | `tcpdump -i lo` during the direct session |",
        ("| `chromium-playwright.har` | Playwright's `record_har_path`, same direct session "
        "(it has no preflights: Playwright leaves them out) |"),
        ("| `chromium-session.flows` | `mitmdump -w`, a second session with Chromium "
        "using mitmdump as its proxy |"),
        ("| `chromium-session.har` | the same mitmdump's HAR export (`--set hardump=...`); "
         "it has the preflights |"),
        ("| `chromium-session.truth.json` | what Chromium decided in both sessions (DevTools "
         "Protocol and server log), request by request; `tests/browser/test_samples.py` "
         "checks corsflow's reports of the four files against it |"),
        "",
        "mitmdump saved only the test's own origins (`save_stream_filter`): Chromium also",
        "sent an update check to `update.googleapis.com` through the proxy.",
        "",
        "The two sessions run the same scenarios with the same timing, so their requests match",
        "one for one (ports and times differ). In the first three steps of `nocache` DevTools'",
        "cache is disabled (`Network.setCacheDisabled`): their preflights carry",
        "`Pragma: no-cache`, and the second and third are redundant, as the control",
        "scenario `nocache-control` (the same steps with the cache on) shows.",
        "",
        "## Scenarios",
        "",
    ]
    for name in SAMPLE_SCENARIOS:
        s = scenarios[name]
        lines.append(f"- `{name}`" + (f": {s.about}" if s.about else ""))
    lines += ["", "## What Chromium decided (the mitmdump session)", "", "```",
              format_truth(proxy), "```", ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: record_samples.py OUTPUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    _direct, proxy = record(out)
    print(format_truth(proxy))
    for name in FILES.values():
        print(f"{out / name}: {(out / name).stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
