"""What ``corsflow check`` hands to CI: a selection of findings (severity, ignored codes, a
baseline of known findings) and its renderings as SARIF 2.1.0 (code-scanning uploads),
JUnit XML and GitHub workflow annotations.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

from .. import __version__
from ..engine.events import Finding
from ..errors import UsageError
from ..findings import CATALOGUE, SEVERITY_ORDER

if TYPE_CHECKING:
    from ..analysis import Report

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/corsflow/corsflow"
_DIGITS = re.compile(r"\d+")


def fingerprint(code: str, origin: str | None, url: str | None, message: str) -> str:
    """What identifies a finding across runs: its code, origin, endpoint and message with
    the counts taken out (a finding that now covers 12 requests instead of 3 is the same)."""
    key = "\x1f".join((code, origin or "", url or "", _DIGITS.sub("#", message)))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def finding_fingerprint(f: Finding) -> str:
    return fingerprint(f.code, f.origin, f.url, f.message)


def load_baseline(path: str) -> frozenset[str]:
    """The fingerprints of the findings in a JSON report written earlier."""
    try:
        with open(path, "rb") as fp:
            data = json.load(fp)
    except OSError as e:
        raise UsageError(f"{path}: cannot read the baseline: {e.strerror or e}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: the baseline is not a corsflow JSON report ({e})") from None
    findings = data.get("findings") if isinstance(data, dict) else None
    if not isinstance(findings, list):
        raise UsageError(f"{path}: the baseline is not a corsflow JSON report (no 'findings')")
    out = set()
    for n, f in enumerate(findings):
        if not isinstance(f, dict) or not isinstance(f.get("code"), str) \
                or not isinstance(f.get("message"), str):
            raise UsageError(f"{path}: finding {n} of the baseline has no code or message")
        out.add(fingerprint(f["code"], f.get("origin"), f.get("url"), f["message"]))
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Selection:
    """The findings ``check`` looks at, and those that fail it."""

    shown: tuple[Finding, ...]
    """At ``min_severity`` or above and not ignored (baseline ones included)."""
    failing: tuple[Finding, ...]
    """Of those: at the failing level and not in the baseline."""
    known: int
    """How many were left out of ``failing`` because the baseline has them."""
    baseline: frozenset[str] | None = None
    """The baseline's fingerprints, when one was given."""

    def in_baseline(self, f: Finding) -> bool:
        return self.baseline is not None and finding_fingerprint(f) in self.baseline


def select(findings: Iterable[Finding], *, fail_on: str = "error",
           min_severity: str = "info", ignore: Sequence[str] = (),
           baseline: frozenset[str] | None = None) -> Selection:
    ignored = {c.lower() for c in ignore}
    shown = tuple(f for f in findings
                  if SEVERITY_ORDER[f.severity] <= SEVERITY_ORDER[min_severity]
                  and f.code.lower() not in ignored)
    at_level = [f for f in shown if SEVERITY_ORDER[f.severity] <= SEVERITY_ORDER[fail_on]]
    known = baseline or frozenset()
    failing = tuple(f for f in at_level if finding_fingerprint(f) not in known)
    return Selection(shown, failing, len(at_level) - len(failing), baseline)


def unknown_codes(codes: Iterable[str]) -> list[str]:
    known = {c.lower() for c in CATALOGUE}
    return [c for c in codes if c.lower() not in known]


def _source(report: Report) -> str:
    return report.sources[0].path if report.sources else "capture"


def _text(f: Finding) -> str:
    return f.message + (f" Fix: {f.hint}" if f.hint else "")


# --- SARIF 2.1.0 ---------------------------------------------------------------------------

_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def render_sarif(report: Report, selection: Selection) -> str:
    """A SARIF 2.1.0 log: one run, a rule per code used, a result per finding."""
    codes = sorted({f.code for f in selection.shown})
    index = {c: i for i, c in enumerate(codes)}
    rules = []
    for c in codes:
        r = CATALOGUE.get(c)
        rule: dict[str, Any] = {"id": c, "name": c}
        if r is not None:
            rule.update({
                "shortDescription": {"text": r.title},
                "fullDescription": {"text": f"{r.title}: {r.why}."},
                "helpUri": r.reference,
                "help": {"text": f"{r.why}. Severity {r.severity_cell}: {r.severity_why}."},
                "defaultConfiguration": {"level": _SARIF_LEVEL[r.severity]},
            })
        rules.append(rule)
    failing = {id(f) for f in selection.failing}
    artifact = _source(report)
    results = []
    for f in selection.shown:
        result: dict[str, Any] = {
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": _SARIF_LEVEL[f.severity],
            "message": {"text": _text(f)},
            "locations": [{
                "physicalLocation": {"artifactLocation": {"uri": artifact},
                                     "region": {"startLine": 1}},
                "logicalLocations": [{"name": f.url or f.origin or "session",
                                      "kind": "resource"}],
            }],
            "partialFingerprints": {"corsflowFinding/v1": finding_fingerprint(f)},
            "properties": {"origin": f.origin, "url": f.url, "exchange_ids":
                           list(f.exchange_ids), "count": f.count, "saved": f.saved},
        }
        if selection.baseline is not None:
            result["baselineState"] = "unchanged" if selection.in_baseline(f) else "new"
        if id(f) not in failing:
            result["properties"]["fails_check"] = False
        results.append(result)
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "corsflow", "version": __version__,
                                "informationUri": INFORMATION_URI, "rules": rules}},
            "artifacts": [{"location": {"uri": s.path}} for s in report.sources],
            "results": results,
        }],
    }
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"


# --- JUnit XML -----------------------------------------------------------------------------


def render_junit(report: Report, selection: Selection) -> str:
    """JUnit XML: one test case per finding (failures are the findings that fail the check),
    or one passing case when there is nothing to report."""
    suite = ET.Element("testsuite", name="corsflow check", tests="0", failures="0",
                       errors="0", skipped="0")
    failing = {id(f) for f in selection.failing}
    count = 0
    for f in selection.shown:
        count += 1
        case = ET.SubElement(suite, "testcase", classname=f"corsflow.{f.code}",
                             name=_clean(f"{f.code}: {f.message}"), file=_source(report))
        if id(f) in failing:
            failure = ET.SubElement(case, "failure", type=f.code,
                                    message=_clean(f.message))
            failure.text = _clean(_text(f) + "\nexchanges: " + ", ".join(f.exchange_ids))
        else:
            out = ET.SubElement(case, "system-out")
            out.text = _clean(f"{f.severity} (does not fail the check): {_text(f)}")
    if not count:
        ET.SubElement(suite, "testcase", classname="corsflow", name="no CORS findings")
        count = 1
    suite.set("tests", str(count))
    suite.set("failures", str(len(selection.failing)))
    root = ET.Element("testsuites", name="corsflow", tests=str(count),
                      failures=str(len(selection.failing)))
    root.append(suite)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    """Characters XML 1.0 cannot carry (captured values may hold any) become U+FFFD."""
    return _XML_BAD.sub("\ufffd", text)


# --- GitHub workflow annotations -----------------------------------------------------------

_GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(report: Report, selection: Selection) -> str:
    """``::error file=...,title=...::message`` lines: GitHub Actions shows each as an
    annotation. Findings that do not fail the check are notices or warnings as they are."""
    failing = {id(f) for f in selection.failing}
    lines = []
    for f in selection.shown:
        known = selection.in_baseline(f)
        level = "notice" if known and id(f) not in failing else _GITHUB_LEVEL[f.severity]
        title = f.code + (" (in the baseline)" if known else "")
        lines.append(f"::{level} file={_gh_property(_source(report))},"
                     f"title={_gh_property(title)}::{_gh_data(_text(f))}")
    return "\n".join(lines) + ("\n" if lines else "")
