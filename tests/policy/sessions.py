"""Small generated sessions, written as HAR files: distinct allowed origins, credentials,
request headers, Max-Age values and a public path that allows any origin."""

from __future__ import annotations

import json
from pathlib import Path

API = "http://api.test:8080"
APP = "https://app.example"
ADMIN = "https://admin.example:8443"
PARTNER = "https://partner.example"
EVIL = "https://evil.example"

Entry = tuple[str, str, dict[str, str], int, dict[str, str]]


def har(entries: list[Entry], path: Path) -> Path:
    """Write a HAR 1.2 file with one entry per (method, url, request headers, status,
    response headers), one second apart."""
    out = []
    for i, (method, url, req, status, resp) in enumerate(entries):
        out.append({
            "startedDateTime": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}.000Z",
            "time": 5,
            "request": {"method": method, "url": url, "httpVersion": "HTTP/1.1",
                        "headers": [{"name": k, "value": v} for k, v in req.items()],
                        "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
            "response": {"status": status, "statusText": "", "httpVersion": "HTTP/1.1",
                         "headers": [{"name": k, "value": v} for k, v in resp.items()],
                         "cookies": [], "content": {"size": 0, "mimeType": "text/plain"},
                         "redirectURL": "", "headersSize": -1, "bodySize": 0},
            "cache": {}, "timings": {"send": 1, "wait": 3, "receive": 1},
        })
    path.write_text(json.dumps({"log": {"version": "1.2", "creator": {"name": "test"},
                                        "entries": out}}))
    return path


def shop_session(path: Path) -> Path:
    """An API with credentials for two origins, a public path with '*', and failures the
    proposal must fix (a method and a header the page sent) or must not (other origins)."""
    cred = {"Access-Control-Allow-Credentials": "true", "Vary": "Origin"}
    pre = {"Access-Control-Allow-Methods": "GET, PUT",
           "Access-Control-Allow-Headers": "content-type, x-trace-id",
           "Access-Control-Max-Age": "86400"}
    e: list[Entry] = [
        ("OPTIONS", f"{API}/items/42", {"Origin": APP, "Access-Control-Request-Method": "PUT",
                                        "Access-Control-Request-Headers": "content-type,x-trace-id"},
         204, {"Access-Control-Allow-Origin": APP, **cred, **pre}),
        ("PUT", f"{API}/items/42", {"Origin": APP, "Cookie": "s=1",
                                    "Content-Type": "application/json", "X-Trace-Id": "t1"},
         200, {"Access-Control-Allow-Origin": APP, **cred,
               "Access-Control-Expose-Headers": "X-Request-Id"}),
        ("GET", f"{API}/items/7", {"Origin": ADMIN, "Cookie": "s=2"},
         200, {"Access-Control-Allow-Origin": ADMIN, **cred,
               "Access-Control-Expose-Headers": "X-Request-Id"}),
        # the method the page needs is missing from Allow-Methods
        ("OPTIONS", f"{API}/items/7", {"Origin": ADMIN, "Access-Control-Request-Method": "DELETE"},
         204, {"Access-Control-Allow-Origin": ADMIN, **cred, **pre}),
        # a header the page sends is missing from Allow-Headers
        ("OPTIONS", f"{API}/items", {"Origin": APP, "Access-Control-Request-Method": "POST",
                                     "Access-Control-Request-Headers": "x-new-header"},
         204, {"Access-Control-Allow-Origin": APP, **cred, **pre}),
        # refused origins: not proposed
        ("GET", f"{API}/items/1", {"Origin": EVIL}, 200, {"Vary": "Origin"}),
        ("GET", f"{API}/items/1", {"Origin": "null"}, 200, {"Vary": "Origin"}),
        # a public path: '*' without credentials, from two origins
        ("GET", f"{API}/public/status", {"Origin": APP}, 200, {"Access-Control-Allow-Origin": "*"}),
        ("GET", f"{API}/public/status", {"Origin": PARTNER}, 200,
         {"Access-Control-Allow-Origin": "*"}),
    ]
    return har(e, path)


def plain_session(path: Path) -> Path:
    """One origin, no credentials, no per-path rules; Max-Age missing (so preflights repeat)."""
    pre = {"Access-Control-Allow-Origin": APP, "Access-Control-Allow-Methods": "PATCH",
           "Access-Control-Allow-Headers": "authorization, x-client"}
    e: list[Entry] = []
    for i in range(3):
        e.append(("OPTIONS", f"{API}/v1/orders/{100 + i}",
                  {"Origin": APP, "Access-Control-Request-Method": "PATCH",
                   "Access-Control-Request-Headers": "authorization,x-client"}, 204, pre))
        e.append(("PATCH", f"{API}/v1/orders/{100 + i}",
                  {"Origin": APP, "Authorization": "Bearer x", "X-Client": "web"}, 200,
                  {"Access-Control-Allow-Origin": APP}))
    e.append(("GET", f"{API}/v1/orders", {"Origin": APP}, 200,
              {"Access-Control-Allow-Origin": APP, "Access-Control-Expose-Headers": "x-total"}))
    return har(e, path)
