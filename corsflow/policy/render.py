"""The ``corsflow policy`` outputs: text (observed, proposed, differences, notes), the policy
JSON, and a configuration per server kind."""

from __future__ import annotations

import importlib
import json
from typing import Any

from .formats import CONFIG_FORMATS
from .model import Policy, PolicyDocument, policy_to_json

_FIELDS = ("allow_origins", "allow_methods", "allow_headers", "allow_credentials", "max_age",
           "expose_headers", "vary_origin", "allow_private_network")


def _show(value: Any) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, tuple):
        return ", ".join(value) if value else "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _table(observed: Policy, proposed: Policy, indent: str) -> list[str]:
    width = max(len(f) for f in _FIELDS)
    col = max(12, *(len(_show(getattr(observed, f))) for f in _FIELDS))
    col = min(col, 44)
    lines = [f"{indent}{'':{width}}  {'observed':{col}}  proposed"]
    for f in _FIELDS:
        o, p = _show(getattr(observed, f)), _show(getattr(proposed, f))
        mark = " " if o == p else "*"
        lines.append(f"{indent}{f:{width}}  {o:{col}} {mark}{p}")
    return lines


def render_text(doc: PolicyDocument) -> str:
    from ..report.text import safe

    if not doc.servers:
        return "No cross-origin requests in the capture: no server policy to show.\n"
    out: list[str] = []
    for s in doc.servers:
        out.append(f"Server {s.server}")
        out.extend(_table(s.observed.default, s.proposed.default, "  "))
        observed_paths = {r.path: r.policy for r in s.observed.paths}
        for rule in s.proposed.paths:
            out.append(f"  path {rule.path} (overrides the default)")
            out.extend(_table(observed_paths.get(rule.path, Policy()), rule.policy, "    "))
        if s.differences:
            out.append("  Differences (* above):")
            for d in s.differences:
                where = f" [{d.path}]" if d.path else ""
                out.append(f"  - {d.field}{where}: {_show(d.observed)} -> {_show(d.proposed)}: "
                           f"{d.why}")
        if s.notes:
            out.append("  Notes:")
            out.extend(f"  - {n}" for n in s.notes)
        out.append("")
    return "\n".join(map(safe, out)) + "\n"


def render_json(doc: PolicyDocument) -> str:
    return json.dumps(policy_to_json(doc), indent=2) + "\n"


def render_config(doc: PolicyDocument, fmt: str) -> str:
    """The configuration of every server in ``doc`` for one server kind."""
    if fmt not in CONFIG_FORMATS:
        raise ValueError(fmt)
    module = importlib.import_module(f"{__package__}.{fmt}")
    parts = [module.generate(s) for s in doc.servers]
    return "\n".join(parts) if parts else \
        "# No cross-origin requests in the capture: no server policy to write.\n"


def render(doc: PolicyDocument, fmt: str) -> str:
    if fmt == "text":
        return render_text(doc)
    if fmt == "json":
        return render_json(doc)
    return render_config(doc, fmt)
