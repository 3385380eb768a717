#!/usr/bin/env python3
"""Write a Chromium NetLog (``--log-net-log``, capture mode Everything) of N exchanges.

    python3 benchmarks/gen_netlog.py N OUT.json [--seed S] [--perf DIR]

The traffic is the shared model's (``../shared/perf/model.py`` beside the repository: one
Chrome tab of a single-page app calling cross-origin APIs, preflights, cache hits and a
few blocked preflights), written the way Chromium 156 logs it: one event a line, the CORS
layer's decisions on the request's source, each preflight on a source of its own linked by
``CORS_PREFLIGHT_URL_REQUEST``, HTTP/2 or HTTP/1.1 transactions with their headers, the
response bodies as ``URL_REQUEST_JOB_FILTERED_BYTES_READ`` and the socket, stream and cache
events around them that make real logs big. The event and source type numbers are shuffled
by the seed, as they differ between Chromium versions, so a reader must take them from the
file's ``constants``.

A summary (exchanges by kind, preflights, cache hits, blocked requests) goes to
``OUT.truth.json``. Deterministic: the same N and seed give the same bytes. Stdlib only.
"""

from __future__ import annotations

import argparse
import base64
import heapq
import json
import os
import random
import sys
import time
from email.utils import formatdate
from pathlib import Path

EVENT_TYPES = (
    "REQUEST_ALIVE", "URL_REQUEST_START_JOB", "CORS_REQUEST", "CHECK_CORS_PREFLIGHT_REQUIRED",
    "CHECK_CORS_PREFLIGHT_CACHE", "CORS_PREFLIGHT_URL_REQUEST", "CORS_PREFLIGHT_RESULT",
    "CORS_PREFLIGHT_CACHED_RESULT", "CORS_PREFLIGHT_ERROR", "CREATED_BY",
    "HTTP_TRANSACTION_SEND_REQUEST_HEADERS", "HTTP_TRANSACTION_HTTP2_SEND_REQUEST_HEADERS",
    "HTTP_TRANSACTION_QUIC_SEND_REQUEST_HEADERS", "HTTP_TRANSACTION_READ_RESPONSE_HEADERS",
    "HTTP_TRANSACTION_SEND_REQUEST", "HTTP_TRANSACTION_READ_HEADERS", "HTTP_TRANSACTION_READ_BODY",
    "URL_REQUEST_JOB_FILTERED_BYTES_READ", "NETWORK_DELEGATE_BEFORE_URL_REQUEST",
    "NETWORK_DELEGATE_BEFORE_START_TRANSACTION", "NETWORK_DELEGATE_HEADERS_RECEIVED",
    "URL_REQUEST_DELEGATE_RESPONSE_STARTED", "URL_REQUEST_DELEGATE_CONNECTED",
    "HTTP_CACHE_GET_BACKEND", "HTTP_CACHE_OPEN_OR_CREATE_ENTRY", "HTTP_CACHE_ADD_TO_ENTRY",
    "HTTP_STREAM_REQUEST", "HTTP_STREAM_JOB_CONTROLLER_BOUND", "HTTP_STREAM_REQUEST_BOUND_TO_JOB",
    "COMPUTED_PRIVACY_MODE", "TRANSPORT_SECURITY_STATE_SHOULD_UPGRADE_TO_SSL",
    "LOCAL_NETWORK_ACCESS_CHECK", "HTTP2_SESSION_SEND_HEADERS", "HTTP2_SESSION_RECV_HEADERS",
    "HTTP2_SESSION_RECV_DATA", "HTTP2_STREAM_UPDATE_RECV_WINDOW", "SOCKET_BYTES_SENT",
    "SOCKET_BYTES_RECEIVED", "SSL_SOCKET_BYTES_RECEIVED", "UPLOAD_DATA_STREAM_INIT",
)
SOURCE_TYPES = ("NONE", "URL_REQUEST", "HTTP2_SESSION", "SOCKET", "HTTP_STREAM_JOB",
                "HTTP_STREAM_JOB_CONTROLLER", "DISK_CACHE_ENTRY")
NET_ERRORS = {"ERR_FAILED": -2, "ERR_ABORTED": -3, "ERR_NAME_NOT_RESOLVED": -105}
CORS_ERROR = {"status": 9, "header": 20}
"""Chromium 156's numbers for PreflightInvalidStatus and HeaderDisallowedByPreflightResponse."""

NONE, BEGIN, END = 0, 1, 2


class Writer:
    def __init__(self, rng: random.Random, model: object, t0: float, out: object) -> None:
        self.rng = rng
        self.m = model
        self.out = out
        names = list(EVENT_TYPES)
        numbers = rng.sample(range(20, 900), len(names))
        self.ev = dict(zip(names, numbers))
        srcs = rng.sample(range(60), len(SOURCE_TYPES))
        self.src = dict(zip(SOURCE_TYPES, srcs))
        self.offset_ms = int(t0 * 1000) - 900_000
        self.next_id = 100
        self.heap: list[tuple[int, int, str]] = []
        self.seq = 0
        self.sessions: dict[str, int] = {}

    def constants(self, t0: float) -> str:
        c = {
            "clientInfo": {"name": "Chromium", "version": "156.0.8078.114", "os_type": "Linux"},
            "logCaptureMode": "Everything", "logFormatVersion": 1,
            "logEventPhase": {"PHASE_BEGIN": BEGIN, "PHASE_END": END, "PHASE_NONE": NONE},
            "logEventTypes": self.ev, "logSourceType": self.src, "netError": NET_ERRORS,
            "timeTickOffset": self.offset_ms,
        }
        return json.dumps({"constants": c}, separators=(",", ":"), sort_keys=True)[:-1]

    def tick(self, t: float) -> int:
        return int(t * 1000) - self.offset_ms

    def source(self, kind: str, t: float) -> dict[str, object]:
        self.next_id += 1
        return {"id": self.next_id, "start_time": str(self.tick(t)), "type": self.src[kind]}

    def add(self, t: float, source: dict[str, object], name: str, phase: int,
            params: dict[str, object] | None = None) -> None:
        ev: dict[str, object] = {"phase": phase, "source": source, "time": str(self.tick(t)),
                                 "type": self.ev[name]}
        if params is not None:
            ev["params"] = params
        self.seq += 1
        heapq.heappush(self.heap, (self.tick(t), self.seq,
                                   json.dumps(ev, separators=(",", ":"), sort_keys=True,
                                              ensure_ascii=False)))

    def flush(self, until: float, first: list[bool]) -> None:
        limit = self.tick(until) if until != float("inf") else 1 << 62
        heap, out = self.heap, self.out
        while heap and heap[0][0] <= limit:
            line = heapq.heappop(heap)[2]
            out.write(("" if first[0] else ",\n") + line)  # type: ignore[attr-defined]
            first[0] = False

    # -- one exchange ---------------------------------------------------------------------------

    def url(self, ex: object) -> str:
        return "https://{}{}".format(self.m.SERVERS[ex.server]["host"], ex.path)  # type: ignore

    def transaction(self, s: dict[str, object], ex: object, t: float, end: float) -> None:
        """One URL_REQUEST_START_JOB with its transaction, on source ``s``."""
        m, rng = self.m, self.rng
        srv = m.SERVERS[ex.server]  # type: ignore[attr-defined]
        url = self.url(ex)
        add = self.add
        add(t, s, "NETWORK_DELEGATE_BEFORE_URL_REQUEST", BEGIN)
        add(t, s, "NETWORK_DELEGATE_BEFORE_URL_REQUEST", END)
        add(t, s, "TRANSPORT_SECURITY_STATE_SHOULD_UPGRADE_TO_SSL", NONE,
            {"get_sts_state_result": True, "host": srv["host"], "should_upgrade_to_ssl": False})
        add(t, s, "URL_REQUEST_START_JOB", BEGIN, {
            "initiator": "https://" + m.SERVERS["app"]["host"], "load_flags": 64 if
            ex.method == "OPTIONS" else 65600, "method": ex.method,  # type: ignore
            "network_isolation_key": "https://acme-corp.example https://acme-corp.example",
            "request_type": "main frame" if ex.resource_type == "document" else "other",  # type: ignore
            "site_for_cookies": "SiteForCookies: {site=https://acme-corp.example; "
                                "schemefully_same=true}", "url": url})
        add(t, s, "COMPUTED_PRIVACY_MODE", NONE, {"privacy_mode": "disabled"})
        for name in ("NETWORK_DELEGATE_BEFORE_START_TRANSACTION", "HTTP_CACHE_GET_BACKEND"):
            add(t, s, name, BEGIN)
            add(t, s, name, END)
        ctl, job = self.source("HTTP_STREAM_JOB_CONTROLLER", t), self.source("HTTP_STREAM_JOB", t)
        add(t, s, "HTTP_STREAM_REQUEST", BEGIN)
        add(t, s, "HTTP_STREAM_JOB_CONTROLLER_BOUND", NONE,
            {"source_dependency": {"id": ctl["id"], "type": ctl["type"]}})
        add(t, s, "HTTP_STREAM_REQUEST_BOUND_TO_JOB", NONE,
            {"source_dependency": {"id": job["id"], "type": job["type"]}})
        add(t, s, "HTTP_STREAM_REQUEST", END)
        add(t, s, "URL_REQUEST_DELEGATE_CONNECTED", BEGIN)
        add(t, s, "LOCAL_NETWORK_ACCESS_CHECK", NONE, {
            "client_address_space": "public", "resource_address_space": "public",
            "result": "allowed-no-less-public"})
        add(t, s, "URL_REQUEST_DELEGATE_CONNECTED", END)
        add(t, s, "HTTP_TRANSACTION_SEND_REQUEST", BEGIN)
        body = ex.req_body  # type: ignore[attr-defined]
        blen = len(body) if isinstance(body, bytes) else len(body.encode()) if body else 0
        if srv["h2"]:
            lines = [":method: " + ex.method, ":authority: " + srv["host"],  # type: ignore
                     ":scheme: https", ":path: " + ex.path]  # type: ignore[attr-defined]
            if body is not None:
                lines.append(f"content-length: {blen:d}")
            lines += [f"{n.lower()}: {v}" for n, v in ex.req_headers]  # type: ignore
            add(t, s, "HTTP_TRANSACTION_HTTP2_SEND_REQUEST_HEADERS", NONE, {"headers": lines})
            session = self.sessions.get(ex.server)  # type: ignore[attr-defined]
            if session is None:
                session = self.sessions[ex.server] = self.source("HTTP2_SESSION", t)["id"]  # type: ignore
            sess = {"id": session, "start_time": "1", "type": self.src["HTTP2_SESSION"]}
            stream = rng.randrange(1, 1 << 20) * 2 + 1
            add(t, sess, "HTTP2_SESSION_SEND_HEADERS", NONE,
                {"exclusive": True, "fin": body is None, "has_priority": True, "headers": lines,
                 "parent_stream_id": 0, "source_dependency": {"id": s["id"], "type": s["type"]},
                 "stream_id": stream, "weight": 220})
        else:
            line = f"{ex.method} {ex.path} HTTP/1.1\r\n"  # type: ignore[attr-defined]
            lines = ["Host: " + srv["host"], "Connection: keep-alive"]
            if body is not None:
                lines.append(f"Content-Length: {blen:d}")
            lines += [f"{n}: {v}" for n, v in ex.req_headers]  # type: ignore
            add(t, s, "HTTP_TRANSACTION_SEND_REQUEST_HEADERS", NONE, {"headers": lines,
                                                                       "line": line})
        add(t, s, "HTTP_TRANSACTION_SEND_REQUEST", END)
        answered = t + (end - t) * 0.8
        add(t, s, "HTTP_TRANSACTION_READ_HEADERS", BEGIN)
        date = formatdate(answered, usegmt=True)
        status = (f"HTTP/1.1 {ex.status:d} {ex.reason}"  # type: ignore[attr-defined]
                  if not srv["h2"] else f"HTTP/1.1 {ex.status:d}")  # type: ignore[attr-defined]
        response = [status] + ["{}: {}".format(n if not srv["h2"] else n.lower(),
                                           date if v is None else v)
                               for n, v in ex.resp_headers]  # type: ignore[attr-defined]
        if srv["h2"]:
            add(answered, sess, "HTTP2_SESSION_RECV_HEADERS", NONE,
                {"fin": not ex.resp_body, "headers": response[1:], "stream_id": stream})
        add(answered, s, "HTTP_TRANSACTION_READ_RESPONSE_HEADERS", NONE, {"headers": response})
        add(answered, s, "HTTP_TRANSACTION_READ_HEADERS", END)
        add(answered, s, "NETWORK_DELEGATE_HEADERS_RECEIVED", BEGIN)
        add(answered, s, "NETWORK_DELEGATE_HEADERS_RECEIVED", END)
        add(answered, s, "URL_REQUEST_START_JOB", END)
        add(answered, s, "URL_REQUEST_DELEGATE_RESPONSE_STARTED", BEGIN)
        add(answered, s, "URL_REQUEST_DELEGATE_RESPONSE_STARTED", END)
        data = ex.resp_body or b""  # type: ignore[attr-defined]
        if isinstance(data, str):
            data = data.encode()
        for at in range(0, len(data), 32768):
            piece = data[at:at + 32768]
            add(end, s, "HTTP_TRANSACTION_READ_BODY", BEGIN)
            add(end, s, "HTTP_TRANSACTION_READ_BODY", END)
            if srv["h2"]:
                add(end, sess, "HTTP2_SESSION_RECV_DATA", NONE,
                    {"fin": at + 32768 >= len(data), "size": len(piece), "stream_id": stream})
            add(end, s, "URL_REQUEST_JOB_FILTERED_BYTES_READ", NONE,
                {"byte_count": len(piece), "bytes": base64.b64encode(piece).decode()})

    def exchange(self, ex: object, blocked_by: object = None) -> None:
        """The source of one request (and, for a preflighted one, of its preflight)."""
        m = self.m
        t = ex.t  # type: ignore[attr-defined]
        end = t + m.Session.est_duration(None, ex)  # type: ignore[attr-defined]
        s = self.source("URL_REQUEST", t)
        url = self.url(ex)
        cross = ex.kind in ("cors-simple", "cors-actual", "cors-blocked")  # type: ignore
        pf = ex.pf_of if ex.kind in ("cors-actual", "cors-blocked") else None  # type: ignore
        begin = pf.t if pf is not None else t  # type: ignore[attr-defined]
        add = self.add
        if cross:
            add(begin, s, "CORS_REQUEST", BEGIN, {
                "cors_preflight_policy": "consider_preflight", "is_revalidating": False,
                "request_headers": {"headers": ["{}: {}".format(*kv) for kv in (ex.author or [])],  # type: ignore
                                    "line": f"{ex.method} {ex.path} HTTP/1.1\r\n"},  # type: ignore
                "url": url})
            needs = ex.kind != "cors-simple"  # type: ignore[attr-defined]
            params: dict[str, object] = {"preflight_required": needs}
            if needs:
                params["preflight_required_reason"] = (
                    "disallowed_method" if ex.method not in m.SIMPLE_METHODS  # type: ignore
                    else "disallowed_header")
            add(begin, s, "CHECK_CORS_PREFLIGHT_REQUIRED", NONE, params)
            if needs and ex.cached_pf:  # type: ignore[attr-defined]
                add(begin, s, "CHECK_CORS_PREFLIGHT_CACHE", NONE, {"status": "hit-and-pass"})
                add(begin, s, "CORS_PREFLIGHT_CACHED_RESULT", NONE, {
                    "access-control-allow-headers": "*", "access-control-allow-methods": "*"})
            elif needs and pf is not None:
                add(begin, s, "CHECK_CORS_PREFLIGHT_CACHE", NONE, {"status": "miss"})
                p = self.source("URL_REQUEST", begin)
                add(begin, s, "CORS_PREFLIGHT_URL_REQUEST", NONE,
                    {"source_dependency": {"id": p["id"], "type": p["type"]}})
                pend = begin + m.Session.est_duration(None, pf)  # type: ignore[attr-defined]
                add(begin, p, "REQUEST_ALIVE", BEGIN, {"priority": "MEDIUM", "url": url})
                add(begin, p, "CREATED_BY", NONE,
                    {"source_dependency": {"id": s["id"], "type": s["type"]}})
                self.transaction(p, pf, begin, pend)
                add(pend, p, "REQUEST_ALIVE", END)
                if ex.kind == "cors-blocked":  # type: ignore[attr-defined]
                    failed = pf.failed or ""  # type: ignore[attr-defined]
                    err: dict[str, object] = {"error": "ERR_FAILED"}
                    if failed.startswith("status"):
                        err["cors-error"] = CORS_ERROR["status"]
                    else:
                        err["cors-error"] = CORS_ERROR["header"]
                        err["failed-parameter"] = failed.rsplit(": ", 1)[-1].split(",")[0]
                    add(pend, s, "CORS_PREFLIGHT_ERROR", NONE, err)
                    add(pend, s, "CORS_REQUEST", END)
                    return
                allow = dict(pf.resp_headers)  # type: ignore[attr-defined]
                add(pend, s, "CORS_PREFLIGHT_RESULT", NONE, {
                    "access-control-allow-headers": allow.get("Access-Control-Allow-Headers", ""),
                    "access-control-allow-methods": allow.get("Access-Control-Allow-Methods", "")})
        add(t, s, "REQUEST_ALIVE", BEGIN, {"priority": "HIGHEST" if ex.resource_type == "document"  # type: ignore
                                           else "MEDIUM", "url": url})
        self.transaction(s, ex, t, end)
        if cross:
            add(end, s, "CORS_REQUEST", END)
        add(end, s, "REQUEST_ALIVE", END)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", type=int, help="number of exchanges (preflights included)")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=20240514)
    ap.add_argument("--perf", type=Path,
                    default=Path(__file__).resolve().parents[1].parent / "shared" / "perf",
                    help="the shared traffic model's folder")
    a = ap.parse_args()
    sys.path.insert(0, str(a.perf))
    import model  # the shared traffic model

    rng = random.Random(a.seed)
    client = model.Client(rng, 0, scheme="https", force_chrome=True)
    t0 = 1715670000.0 + rng.uniform(0, 3600)
    sess = model.Session(rng, client, t0)
    started = time.time()
    stats: dict[str, int] = {}
    written = 0
    with open(a.out, "w", encoding="utf-8") as out:
        w = Writer(rng, model, t0, out)
        out.write(w.constants(t0) + ',\n"events": [\n')
        first = [True]
        while written < a.n:
            burst = sess.next_burst()
            for ex in burst:
                if written >= a.n:
                    break
                if ex.kind == "preflight":
                    continue  # written with the request it was sent for
                w.exchange(ex)
                written += 1 + (1 if ex.pf_of is not None and not ex.cached_pf else 0)
                model.tally([ex] + ([ex.pf_of] if ex.pf_of is not None else []), stats)
            w.flush(sess.now, first)
        w.flush(float("inf"), first)
        out.write('],\n"polledData": {}}\n')
    stats.pop("exchanges", None)
    truth = {"file": os.path.basename(a.out), "seed": a.seed, "exchanges": written,
             "bytes": os.path.getsize(a.out), "by_kind": dict(sorted(stats.items())),
             "notes": "cors-blocked requests are never sent: each is an exchange without a "
                      "response beside its failed preflight"}
    with open(a.out + ".truth.json", "w") as f:
        json.dump(truth, f, indent=2)
        f.write("\n")
    print(f"{os.path.basename(a.out)}: {written:d} exchanges, {truth['bytes'] / 1e6:.1f} MB "
          f"in {time.time() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
