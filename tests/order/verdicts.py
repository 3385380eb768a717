"""Reports compared by what they concluded, not by ids (which carry the file's number)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from corsflow.analysis import Report

Key = tuple[str, str, float]


def key_of(v: Any) -> Key:
    ex = v.exchange
    return (ex.method, ex.url, round(ex.started, 6))


def verdicts(report: Report) -> dict[Key, tuple[object, ...]]:
    """Each exchange (by method, URL and start) with its role, verdict, error, the
    preflight it was paired with (by the same key), cache use and redundancy."""
    by_id = {v.exchange.id: v for v in report.exchanges}
    out: dict[Key, tuple[object, ...]] = {}
    for v in report.exchanges:
        pre = by_id.get(v.preflight_id) if v.preflight_id else None
        out[key_of(v)] = (v.role, v.verdict, v.cors_error, key_of(pre) if pre else None,
                          v.cache, v.redundant)
    return out


def errors(report: Report) -> Counter[tuple[str, str | None]]:
    """CORS error findings by code and URL, with how many exchanges each stands for. (The
    security review's findings are about the server's policy, not about what the browser
    did; tests/security/test_corpus_review.py holds their hand review.)"""
    from corsflow.findings.security import is_security

    out: Counter[tuple[str, str | None]] = Counter()
    for f in report.findings:
        if f.severity == "error" and not is_security(f):
            out[(f.code, f.url)] += f.count or len(f.exchange_ids)
    return out


def load_har(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8-sig"))
    return data


def write_har(path: Path, doc: dict[str, Any], entries: list[Any]) -> Path:
    log = dict(doc["log"], entries=entries)
    path.write_text(json.dumps({**doc, "log": log}), encoding="utf-8")
    return path
