"""What every configuration generator shares: the rules in match order, the header comment,
and names safe to use as variables."""

from __future__ import annotations

import re

from .model import Policy, ServerPolicy, template_regex


def ordered_rules(server: ServerPolicy) -> list[tuple[str | None, Policy]]:
    """(path regex or None for the default, policy), first match first."""
    rules = server.proposed
    return [(template_regex(r.path), r.policy) for r in rules.paths] + [(None, rules.default)]


def header_comment(server: ServerPolicy, kind: str, prefix: str, tested: str | None,
                   deviations: dict[str, str]) -> str:
    """The lines that open each generated configuration: what it is for and how far it was
    tested."""
    lines = [f"corsflow: the proposed CORS policy of {server.server} for {kind}.",
             ("Origins are an explicit allow-list; preflights (OPTIONS with "
             "Access-Control-Request-Method) are answered 204.")]
    if tested:
        lines.append(f"Tested: {tested}.")
    else:
        lines.append("UNTESTED: corsflow could not run this server in its tests.")
    for why in deviations.values():
        lines.append(f"Differs from the policy: {why}")
    return "".join(f"{prefix} {line}\n" for line in lines)


def ident(server: str) -> str:
    """A variable-name fragment for a server origin: ``https://api.example:8443`` ->
    ``api_example_8443``."""
    host = server.split("://", 1)[-1]
    return re.sub(r"[^A-Za-z0-9]+", "_", host).strip("_").lower() or "server"
