"""Findings: what a person should act on or know, raised from the engine's verdicts.

The layer between the engine and the report: :mod:`.catalogue` names every code,
:mod:`.cors` raises findings about one exchange, :mod:`.aggregate` those that need the
whole capture. The report layer renders findings and never decides them.
"""

from .aggregate import Aggregator
from .catalogue import CATALOGUE, SEVERITY_ORDER, SPEC, Rule, make_finding, sort_findings
from .cors import findings_for

__all__ = ["CATALOGUE", "SEVERITY_ORDER", "SPEC", "Aggregator", "Rule", "findings_for",
           "make_finding", "sort_findings"]
