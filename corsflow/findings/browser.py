"""ModelDisagreement findings from the browser's own logged decisions (NetLog).

:func:`~corsflow.engine.evidence.reconcile` puts the browser's decisions into each verdict
and lists where the model decided otherwise; each such place becomes a finding naming both,
so a model that drifts from the real browser shows up in every report of a NetLog.
"""

from __future__ import annotations

from ..engine.events import ExchangeVerdict, Finding
from ..engine.evidence import reconcile
from ..engine.profiles import EngineProfile
from .catalogue import make_finding


def weigh_browser_decisions(verdicts: list[ExchangeVerdict], profile: EngineProfile,
                            findings: list[Finding]) -> list[ExchangeVerdict]:
    """The verdicts with the browser's decisions in place; a finding per difference."""
    out = []
    for v in verdicts:
        v, diffs = reconcile(v)
        out.append(v)
        ex = v.exchange
        for d in diffs:
            findings.append(make_finding(
                "ModelDisagreement",
                f"{ex.method} {ex.url}: Chromium's NetLog says {d.field} {d.browser}, the "
                f"{profile.name} model says {d.model}",
                (ex.id,),
                "the report follows the browser's decision; if the log began mid-session the "
                "model could not know what was cached before, otherwise please report this "
                "capture so the engine profile can be corrected",
                origin=v.origin, url=ex.url))
    return out
