from __future__ import annotations

import math

import pandas as pd
import pytest

from corsflow.analysis import Report
from corsflow.report.frames import (
    EXCHANGE_COLUMNS,
    FINDING_COLUMNS,
    PREFLIGHT_COLUMNS,
    by_endpoint,
    by_origin,
    exchanges_frame,
    findings_frame,
    preflights_frame,
)


def test_exchanges_frame_columns_and_dtypes(report: Report) -> None:
    df = exchanges_frame(report)
    assert tuple(df.columns) == EXCHANGE_COLUMNS
    assert len(df) == len(report.exchanges)
    assert list(df["id"]) == [v.exchange.id for v in report.exchanges]
    assert isinstance(df["time"].dtype, pd.DatetimeTZDtype) and str(df["time"].dt.tz) == "UTC"
    for col in ("role", "verdict", "cache", "cors_error", "method", "credentials"):
        assert isinstance(df[col].dtype, pd.CategoricalDtype), col
    assert list(df["role"].cat.categories) == ["preflight", "preflighted", "simple", "other"]
    assert str(df["status"].dtype) == "Int64" and str(df["redundant"].dtype) == "boolean"


def test_exchanges_frame_values(report: Report) -> None:
    df = exchanges_frame(report).set_index("id")
    e2 = df.loc["e2"]
    assert e2["time"] == pd.Timestamp("2025-11-22 00:06:41.130", tz="UTC")
    assert e2["host"] == "api.example.net" and e2["path"] == "/v1/items/42"
    assert e2["path_template"] == "/v1/items/{id}" and e2["preflight_id"] == "e1"
    assert e2["cache"] == "miss" and e2["total_ms"] == 80.0 and e2["wait_ms"] == 64.0
    assert df.loc["e3", "path"] == "/v1/feed" and df.loc["e3", "path_template"] == "/v1/feed"
    assert pd.isna(df.loc["e10", "status"]) and math.isnan(df.loc["e10", "total_ms"])
    assert df.loc["e10", "cors_error"] == "PreflightMissingAllowOriginHeader"
    assert bool(df.loc["e7", "redundant"]) and bool(df.loc["e5", "avoidable"])
    assert not bool(df.loc["e1", "avoidable"]) and pd.isna(df.loc["e2", "avoidable"])
    assert pd.isna(df.loc["e0", "origin"]) and df.loc["e0", "role"] == "other"
    assert df["verdict"].value_counts()["blocked"] == 2
    assert (
        df.loc["e2", "preflight_reasons"]
        == "method PUT, header x-api-key, Content-Type application/json"
    )
    assert df.loc["e2", "unsafe_headers"] == "content-type, x-api-key" and pd.isna(
        df.loc["e3", "unsafe_headers"]
    )


def test_preflights_frame_lists_the_requests_each_preflight_stood_for(report: Report) -> None:
    df = preflights_frame(report)
    assert tuple(df.columns) == PREFLIGHT_COLUMNS
    assert list(df["id"]) == ["e1", "e5", "e7", "e9", "e11"]
    e1 = df.set_index("id").loc["e1"]
    assert e1["request_ids"] == ("e2", "e4") and e1["request_count"] == 2 and e1["cache_hits"] == 1
    assert e1["requested_method"] == "PUT" and e1["requested_headers"] == "content-type, x-api-key"
    assert e1["max_age_sent"] == "600" and e1["max_age"] == 600 and e1["max_age_effective"] == 600.0
    assert e1["cost_ms"] == 120.0
    assert isinstance(df["time"].dtype, pd.DatetimeTZDtype)
    clamped = df.set_index("id").loc["e11"]
    assert clamped["max_age"] == 86400 and clamped["max_age_effective"] == 7200.0
    assert bool(clamped["max_age_clamped"]) and clamped["max_age_problem"] == "above-cap"
    missing = df.set_index("id").loc["e5"]
    assert pd.isna(missing["max_age_sent"]) and pd.isna(missing["max_age"])
    assert missing["max_age_effective"] == 5.0 and missing["max_age_problem"] == "missing"
    assert df["avoidable"].tolist() == [False, True, True, False, False]
    assert df.set_index("id").loc["e9", "cors_error"] == "PreflightMissingAllowOriginHeader"


def test_findings_frame(report: Report) -> None:
    df = findings_frame(report)
    assert tuple(df.columns) == FINDING_COLUMNS
    assert df["severity"].dtype == pd.CategoricalDtype(["error", "warning", "info"], ordered=True)
    assert isinstance(df["code"].dtype, pd.CategoricalDtype)
    assert df.loc[0, "exchange_ids"] == ("e9", "e10") and df.loc[0, "exchange_count"] == 2
    assert (df["severity"] >= "warning").sum() == 4  # ordered: warning and info
    assert df.sort_values("severity")["severity"].iloc[0] == "error"


def test_by_origin(report: Report) -> None:
    df = by_origin(report)
    assert list(df.index) == ["https://app.example.com", "https://admin.example.org"]
    app = df.loc["https://app.example.com"]
    assert (app["requests"], app["preflights"], app["cache_hits"]) == (5, 3, 1)
    assert (app["redundant_preflights"], app["avoidable_preflights"], app["blocked"]) == (1, 2, 0)
    assert app["preflight_ms"] == 335.0 and app["request_ms"] == 350.0
    assert app["preflight_share"] == pytest.approx(335 / 685)
    admin = df.loc["https://admin.example.org"]
    assert (admin["blocked"], admin["failed_preflights"]) == (1, 1)
    assert df["requests"].dtype == "int64"


def test_by_endpoint(report: Report) -> None:
    df = by_endpoint(report)
    assert df.index[0] == "https://api.example.net/v1/items/{id}"
    items = df.loc["https://api.example.net/v1/items/{id}"]
    assert (items["requests"], items["preflights"], items["avoidable_preflights"]) == (4, 3, 2)
    assert items["methods"] == "PUT" and items["origins"] == "https://app.example.com"
    assert df.loc["https://api.example.net/v1/feed", "preflight_share"] == 0.0
    assert df["preflight_ms"].sum() == 565.0


def test_empty_report_gives_empty_frames_with_columns(empty: Report) -> None:
    assert tuple(exchanges_frame(empty).columns) == EXCHANGE_COLUMNS
    assert len(preflights_frame(empty)) == 0 and len(findings_frame(empty)) == 0
    assert len(by_origin(empty)) == 0 and len(by_endpoint(empty)) == 0
