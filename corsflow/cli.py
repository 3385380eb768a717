"""The ``corsflow`` command: parse arguments, call the library, render, return an exit code.

Exit codes (:data:`EXIT_CODES`): 0 the analysis ran (whatever it found); 1 ``check`` found
findings at the level asked for; 2 bad input or usage; 3 an internal error (a bug in
corsflow, never a verdict on the capture). 2 and 3 print one line on stderr, never a
traceback (``CORSFLOW_DEBUG=1`` shows it for a bug report).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import dataclasses
import gc
import io
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeVar

from . import __version__
from .engine.profiles import PROFILES
from .errors import CorsflowError, UsageError, where_raised
from .ingest.ahead import discard_started
from .reading import start_reading

T = TypeVar("T")
from .report.inert import visible

if TYPE_CHECKING:
    from .analysis import Progress, Report
    from .engine.events import ExchangeVerdict
    from .fleet import FleetReport, SessionResult

FORMATS = ("text", "json", "csv", "markdown", "html")
CI_FORMATS = ("sarif", "junit", "github")
ALL_FORMATS = (*FORMATS, *CI_FORMATS, "none")
"""Every --format some command takes (given before the command, it is checked after)."""

EXIT_OK, EXIT_FINDINGS, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_CODES = """exit status:
  0  the analysis ran (whatever it found)
  1  check: findings at the --fail-on level or above
  2  unreadable input or bad usage (one line on stderr names the file and the place)
  3  internal error: a bug in corsflow, not a finding (one line on stderr;
     CORSFLOW_DEBUG=1 prints the traceback)"""
EXIT_FLUSH = 120
"""The output could not be written at exit (a full disk): the status Python itself gives."""


def _render(report: Report, fmt: str, stream: TextIO | None, *, show_all: bool = False,
            security: bool = False) -> str | bytes:
    if fmt == "json":
        from .changes import start_changes
        from .report.json import iter_json

        start_changes(report)  # replayed in a second process while this one writes the rest
        return b"".join(iter_json(report))  # UTF-8 already: written as it is
    if fmt == "csv":
        from .report.text import render_csv

        return render_csv(report)
    if fmt == "markdown":
        from .report.text import render_markdown

        return render_markdown(report, security_only=security)
    if fmt == "html":
        from .report.html import render_html

        return render_html(report)
    from .report.text import render_text

    return render_text(report, color=_wants_color(stream), show_all=show_all,
                       security_only=security)


def _wants_color(stream: TextIO | None) -> bool | None:
    """None lets the renderer look at the terminal; a file never gets colour codes."""
    return None if stream is sys.stdout else False


@contextlib.contextmanager
def _stdout_errors() -> Iterator[None]:
    """A full disk or a failing device under standard output is the user's to hear about in
    one line, not a bug (a reader that went away is handled by ``_main``)."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as e:
        raise UsageError(f"standard output: cannot write: {e.strerror or e}") from None


def _print(text: str | bytes) -> None:
    with _stdout_errors():
        if isinstance(text, bytes):
            sys.stdout.buffer.write(text)
        else:
            sys.stdout.write(text)


def _emit(text: str | bytes, output: str | None) -> None:
    if output is None or output == "-":
        _print(text)
        return
    try:
        if isinstance(text, bytes):
            with open(output, "wb") as fb:
                fb.write(text)
        else:
            with open(output, "w", encoding="utf-8", errors="backslashreplace") as f:
                f.write(text)
    except OSError as e:
        raise UsageError(f"{output}: cannot write: {e.strerror or e}") from None
    logging.getLogger("corsflow").info("wrote %s", output)


def _target(output: str | None) -> TextIO | None:
    """The stream colour is decided for: stdout, or none when writing to a file."""
    return sys.stdout if output in (None, "-") else None


LARGE_INPUT = 20 * 1024 * 1024
"""Inputs above this many bytes in all get a progress line on stderr (when it is a terminal)."""


def _choose_engine(args: argparse.Namespace) -> None:
    """Without --engine: the engine the start of the capture shows (chromium when it shows
    none), for a streamed report (its records name the engine before the analysis has seen
    the capture). With --engine: a warning on stderr when the capture shows another."""
    from .analysis import EngineChoice, sample_engine

    choice = EngineChoice(args.engine, warn_other=True)
    choice.decide(sample_engine(args.paths))
    assert choice.profile is not None
    args.engine = choice.profile.name


def _analyze(args: argparse.Namespace) -> Report:
    """The report the outputs are made from."""
    return _for_output(args, _analyze_paths(args))


def _for_output(args: argparse.Namespace, report: Report) -> Report:
    """Secrets redacted unless ``--no-redact``: reports travel in tickets and CI logs."""
    if getattr(args, "no_redact", False):
        return report
    from .changes import redacted_from, start_changes
    from .redact import redact_report

    if getattr(args, "format", None) == "json":
        start_changes(report)  # replayed by a second process from now: see _render
    redacted = redact_report(report)
    redacted_from(redacted, report)
    return redacted


def analyze_paths(paths: Sequence[str], **options: Any) -> Report:
    """:func:`corsflow.analysis.analyze_paths`, imported when first called: a large file's
    reading process is started first (:func:`~corsflow.reading.start_reading`), so it reads
    while this process imports the analysis (tens of milliseconds)."""
    if options.get("read_ahead"):
        start_reading(paths)
    from .analysis import analyze_paths as analyze

    return analyze(paths, **options)


def _analyze_paths(args: argparse.Namespace) -> Report:
    """analyze_paths, with a progress display on stderr for large inputs read at a terminal."""
    return _with_progress(args, lambda progress: analyze_paths(
        args.paths, engine=args.engine, progress=progress, one_session=args.one_session,
        warn_other_engine=True, read_ahead=True))


def _with_progress(args: argparse.Namespace, call: Callable[[Progress | None], T]) -> T:
    """Run the analysis ``call``, showing progress on stderr for large inputs read at a
    terminal."""
    size = 0
    for path in args.paths:
        try:
            size += os.path.getsize(path)
        except OSError:
            pass  # analyze_paths names the file that cannot be read
    if args.quiet or size < LARGE_INPUT or not sys.stderr.isatty():
        return call(None)
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("reading", total=None)

        def show(path: str, count: int) -> None:
            bar.update(task, description=f"{os.path.basename(path)}: {count:,} exchanges")

        return call(show)


def _emit_chunks(chunks: Iterable[bytes], output: str | None) -> None:
    """A report written as it is serialised: the largest reports are JSON and CSV ones."""
    if output is None or output == "-":
        for chunk in chunks:
            _print(chunk)
        return
    try:
        with open(output, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
    except OSError as e:
        raise UsageError(f"{output}: cannot write: {e.strerror or e}") from None


def _security_view(report: Report) -> Report:
    """``--security``: the passive security review's findings alone."""
    from .changes import same_changes
    from .findings.security import is_security

    view = dataclasses.replace(report, findings=tuple(filter(is_security, report.findings)))
    same_changes(view, report)
    return view


def _analyze_fleet(args: argparse.Namespace) -> FleetReport:
    """Each file its own session, in parallel; a progress bar over files and bytes at a
    terminal."""
    from .api import expand_fleet
    from .fleet import analyze_fleet

    paths = expand_fleet(args.paths)
    # Without --engine each session is modelled as the browser its capture shows (one test
    # suite runs Chromium, Firefox and WebKit), told in its own analysis's pass.
    client = _dask_client(args.dask) if args.dask else None
    if args.quiet or not sys.stderr.isatty():
        return analyze_fleet(paths, args.engine, jobs=args.jobs, client=client,
                             redact=not args.no_redact)
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress

    total = sum(os.path.getsize(p) for p in paths if os.path.isfile(p))
    columns = (BarColumn(), MofNCompleteColumn(), DownloadColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        files = bar.add_task("sessions", total=len(paths))
        size = bar.add_task("bytes", total=total, visible=False)

        def show(result: SessionResult) -> None:
            bar.advance(files)
            bar.advance(size, result.size)

        return analyze_fleet(paths, args.engine, jobs=args.jobs, client=client, progress=show,
                             redact=not args.no_redact)


def _dask_client(address: str) -> Any:
    from .report.optional import require

    distributed = require("distributed", "Analyses on a Dask cluster")
    try:
        return distributed.Client(address, timeout="10s")
    except (OSError, TimeoutError) as e:
        raise UsageError(f"--dask {address}: cannot reach the scheduler ({e})") from None


def _render_fleet(report: FleetReport, fmt: str) -> str:
    from .report import fleet as render

    if fmt == "json":
        return render.render_fleet_json(report)
    if fmt == "csv":
        return render.render_fleet_csv(report)
    if fmt == "markdown":
        return render.render_fleet_markdown(report)
    if fmt == "html":
        raise UsageError("--batch reports come as text, json, csv or markdown")
    return render.render_fleet_text(report)


STREAM_ABOVE = 256 * 1024 * 1024
"""Inputs of this many bytes and more get a JSON or CSV report written as verdicts settle."""


def _input_size(paths: Sequence[str]) -> int:
    return sum(os.path.getsize(p) for p in paths if os.path.isfile(p))


def cmd_analyze(args: argparse.Namespace) -> int:
    if args.batch:
        _emit(_render_fleet(_analyze_fleet(args), args.format), args.output)
        return 0
    start_reading(args.paths)  # before the analysis is imported (see analyze_paths)
    from .streamed import STREAMED_FORMATS, streamed_report

    if (args.format in STREAMED_FORMATS and not (args.origin or args.url or args.code)
            and _input_size(args.paths) >= STREAM_ABOVE):
        # Verdicts are spooled as they settle, not kept: memory follows what is live. (The
        # replayed changes need the verdicts in memory: smaller inputs keep them.)
        _choose_engine(args)  # the streamed report carries no notes
        _, chunks = _with_progress(args, lambda progress: streamed_report(
            args.paths, args.format, engine=args.engine, one_session=args.one_session,
            progress=progress, read_ahead=True))
        _emit_chunks(chunks, args.output)
        return 0
    report = _analyze(args)
    if args.origin or args.url or args.code:
        from .report.select import narrow

        report = narrow(report, origin=args.origin, url=args.url, codes=args.code)
    if args.security:
        report = _security_view(report)
    _emit(_render(report, args.format, _target(args.output), show_all=args.all,
                  security=args.security), args.output)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    levels = ("error",) if args.fail_on == "error" else ("error", "warning")
    if args.batch:
        from .report.text import safe

        fleet = _analyze_fleet(args)
        if args.format != "none":
            _emit(_render_fleet(fleet, args.format), args.output)
        bad = [f for f in fleet.findings if f.severity in levels]
        for ff in bad[:20]:
            print(f"corsflow check: {ff.severity} {ff.code} in {ff.sessions} session(s): "
                  f"{safe(ff.message)}", file=sys.stderr)
        for s in fleet.failed:
            print(f"corsflow check: unreadable: {safe(s.error or s.path)}", file=sys.stderr)
        print(f"corsflow: check {'failed' if bad else 'passed'}: {len(bad)} finding(s) at level "
              f"{args.fail_on} or above in {len(fleet.sessions)} session(s)", file=sys.stderr)
        return 1 if bad else 0
    from .report import ci

    unknown = ci.unknown_codes(args.ignore)
    if unknown:
        raise UsageError(f"--ignore {unknown[0]}: no such finding code (see README's table)")
    baseline = ci.load_baseline(args.baseline) if args.baseline else None
    report = _analyze(args)
    selection = ci.select(report.findings, fail_on=args.fail_on,
                          min_severity=args.min_severity, ignore=args.ignore,
                          baseline=baseline)
    failing = selection.failing
    if args.format in CI_FORMATS:
        render = {"sarif": ci.render_sarif, "junit": ci.render_junit,
                  "github": ci.render_github}[args.format]
        _emit(render(report, selection), args.output)
    elif args.format != "none":
        _emit(_render(report, args.format, _target(args.output)), args.output)
    for f in failing[:20]:
        print(f"corsflow check: {f.severity} {f.code}: {visible(f.message)}", file=sys.stderr)
    if len(failing) > 20:
        print(f"corsflow: ... and {len(failing) - 20} more", file=sys.stderr)
    known = f" ({selection.known} more in the baseline)" if selection.known else ""
    print(f"corsflow: check {'failed' if failing else 'passed'}: {len(failing)} new "
          f"finding(s) at level {args.fail_on} or above{known}", file=sys.stderr)
    return 1 if failing else 0


def cmd_whatif(args: argparse.Namespace) -> int:
    from .whatif import ChangeSet, parse_set, what_if
    from .whatif.load import load_policy
    from .whatif.render import (
        render_whatif_html,
        render_whatif_json,
        render_whatif_markdown,
        render_whatif_text,
    )

    changes = [ChangeSet((parse_set(text),), label=text) for text in args.set or ()]
    if args.policy:
        changes.insert(0, load_policy(args.policy))
    report = _analyze(args)
    result = what_if(report, changes)
    render = {"text": render_whatif_text, "json": render_whatif_json,
              "markdown": render_whatif_markdown, "html": render_whatif_html}[args.format]
    _emit(render(result), args.output)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from .report.explain import explain

    report = _for_output(args, analyze_paths(
        args.paths, engine=args.engine, one_session=args.one_session, warn_other_engine=True,
        read_ahead=True))
    if getattr(args, "format", "text") == "json":
        from .report.explain import explain_json

        chosen_json = _chosen(report, args)
        _print(explain_json(chosen_json, report))
        return 0
    if args.id:
        chosen = [v for v in report.exchanges if v.exchange.id == args.id]
        if not chosen:
            raise UsageError(f"no exchange with id {args.id!r} (ids look like "
                             f"{', '.join(v.exchange.id for v in report.exchanges[:3]) or 'e0'})")
    else:
        chosen = [v for v in report.exchanges if args.url in v.exchange.url]
        if not chosen:
            raise UsageError(f"no exchange whose URL contains {args.url!r}")
    _print("\n\n".join(explain(v, report) for v in chosen) + "\n")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from .probe import ProbeRequest, from_capture, probe, render

    if args.replay:
        if args.id is None:
            raise UsageError("--replay needs --id (the exchange to replay)")
        req = from_capture(args.url, args.replay, args.id)
    else:
        req = ProbeRequest(args.url, method=args.method, preflight=args.preflight,
                           request_headers=tuple(args.request_header or ()))
    answers, report = probe(req, args.origin)
    _print(render(answers, report))
    return 0


def cmd_policy(args: argparse.Namespace) -> int:
    from .engine.fetch import serialize_origin
    from .policy.derive import derive
    from .policy.render import render

    server = None
    if args.server is not None:
        server = serialize_origin(args.server)
        if server == "null":
            raise UsageError(f"--server {args.server!r}: not an http(s) origin")
    report = _analyze(args)
    doc = derive(report, server)
    if server is not None and not doc.servers:
        raise UsageError(f"--server {server}: no cross-origin request to it in the capture")
    _emit(render(doc, args.format), args.output)
    return 0


def _chosen(report: Report, args: argparse.Namespace) -> list[ExchangeVerdict]:
    if args.id:
        chosen = [v for v in report.exchanges if v.exchange.id == args.id]
        if not chosen:
            raise UsageError(f"no exchange with id {args.id!r}")
        return chosen
    chosen = [v for v in report.exchanges if args.url in v.exchange.url]
    if not chosen:
        raise UsageError(f"no exchange whose URL contains {args.url!r}")
    return chosen


def _mitmproxy_missing() -> UsageError:
    return UsageError("mitmproxy is not installed: pip install 'corsflow[mitmproxy]'")


def cmd_addon_path(args: argparse.Namespace) -> int:
    try:
        from .addon import addon_path
    except ImportError:
        raise _mitmproxy_missing() from None
    print(addon_path())
    return 0


def _check_live(host: str, port: int, report: str | None) -> None:
    """What would make mitmdump stop at start-up, said in one line before it starts."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--listen-port {port}: not a port number (0 to 65535)")
    if report:
        _check_writable(report, "the report")
    import socket

    try:
        # As mitmproxy binds (SO_REUSEADDR on POSIX): a port only in TIME_WAIT is free.
        socket.create_server((host, port)).close()
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def _check_writable(path: str, what: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{path}: cannot write {what}: directory {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{path}: cannot write {what}: directory {folder} is not writable")


def cmd_live(args: argparse.Namespace) -> int:
    try:
        from .addon import run_live
    except ImportError:
        raise _mitmproxy_missing() from None
    if args.report and not args.report.lower().endswith(REPORT_SUFFIXES):
        raise UsageError(f"--report {args.report}: the live report is written as .json or "
                         ".html; give a name ending in one of them")
    _check_live(args.listen_host, args.listen_port, args.report)
    settings: list[tuple[str, str]] = []
    if args.browser is not None:
        settings += [("corsflow_browser", args.browser), ("corsflow_browser_url", args.url)]
        if args.browser_arg:
            settings.append(("corsflow_browser_args", " ".join(args.browser_arg)))
    if args.save:
        _check_writable(args.save, "the flows")
        settings.append(("corsflow_save", args.save))
    if args.web is not None:
        _check_live("127.0.0.1", args.web, None)
        settings.append(("corsflow_web_port", str(args.web)))
    extra = [a for a in args.mitmdump_args if a != "--"]
    status = run_live(args.listen_host, args.listen_port, args.report, args.engine, extra,
                      settings=settings)
    if status:
        # mitmdump printed why; its status 1 must not read as check's "findings found".
        raise UsageError(f"mitmdump stopped with status {status} (its message is above)")
    return EXIT_OK


REPORT_SUFFIXES = (".json", ".html", ".htm")


SHELLS = ("bash", "zsh", "fish")


def cmd_completion(args: argparse.Namespace) -> int:
    """Print the shell code that completes corsflow's commands, options and file names."""
    from argcomplete.shell_integration import shellcode

    _print(shellcode(["corsflow"], shell=args.shell))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corsflow",
        description="Explain what the browser did with every cross-origin request in a "
                    "captured session (HAR, pcap/pcapng, mitmproxy flows).",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"corsflow {__version__}")
    # -q, --engine and --format are taken before the command or after it alike; defaults are
    # filled in by _settle_globals once parsing is done (argparse.SUPPRESS keeps a value given
    # before the command from being overwritten by the command's own default).
    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="print no warnings about skipped records (default: off)")
    parser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="print no warnings about skipped records (default: off)")
    parser.add_argument("--engine", choices=sorted(PROFILES), default=argparse.SUPPRESS,
                        help="as the command's --engine")
    parser.add_argument("--format", choices=ALL_FORMATS, default=argparse.SUPPRESS,
                        help="as the command's --format")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_parser = sub.add_parser

    def add_command(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return add_parser(name, parents=[quiet], **kwargs)

    sub.add_parser = add_command  # type: ignore[method-assign]

    def engine(p: argparse.ArgumentParser, detect: bool = True) -> None:
        default = ("chromium, or the browser the capture's User-Agent or HAR creator names"
                   if detect else "chromium")
        p.add_argument("--engine", choices=sorted(PROFILES), default=argparse.SUPPRESS,
                       help="the browser whose preflight cache and checks to model "
                            f"(default: {default}; choices: {', '.join(sorted(PROFILES))})")
        # None: detected from the capture (analyze_paths, or _choose_engine).
        p.set_defaults(engine_default=None if detect else "chromium")

    def formats(p: argparse.ArgumentParser, choices: Sequence[str], default: str) -> None:
        p.add_argument("--format", choices=choices, default=argparse.SUPPRESS,
                       help=f"the report's format (default: {default}; choices: "
                            f"{', '.join(choices)})")
        p.set_defaults(format_choices=tuple(choices), format_default=default)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("paths", nargs="+", metavar="PATH",
                       help="capture files; the format is detected from the content")
        engine(p)
        p.add_argument("--one-session", action="store_true",
                       help="analyse all files as one session even where they look like "
                            "separate ones: other browsers, overlapping or hours apart "
                            "(default: off)")
        p.add_argument("--no-redact", action="store_true",
                       help="keep Cookie, Authorization and URL token values in the output "
                            "(default: off: they are replaced with REDACTED)")

    def batch(p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("many captures (each file its own browser session)")
        g.add_argument("--batch", action="store_true",
                       help="analyse each file (or each capture under a directory) as its own "
                            "session, in parallel, and merge the results (default: off: the "
                            "files are merged by time into sessions)")
        g.add_argument("--jobs", type=int, metavar="N",
                       help="local worker processes for --batch (default: every core)")
        g.add_argument("--dask", metavar="ADDRESS",
                       help="run --batch on a Dask cluster, e.g. tcp://scheduler:8786 "
                            "(needs corsflow[dask]; default: local processes)")

    p = sub.add_parser("analyze", help="analyse captures and print the report")
    common(p)
    batch(p)
    formats(p, FORMATS, "text")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the report here (default: standard output)")
    p.add_argument("--all", action="store_true",
                   help="text: list every failure, finding and endpoint, not the first few "
                        "(default: off)")
    p.add_argument("--origin", help="only exchanges and findings of this page or server origin (default: all)")
    p.add_argument("--url", help="only exchanges whose URL contains this text, and their "
                                 "findings (default: all)")
    p.add_argument("--code", action="append", metavar="CODE",
                   help="only findings with this code (repeatable; default: all)")
    p.add_argument("--security", action="store_true",
                   help="only the passive security review (CWE-942), per server origin "
                        "(default: off: the whole report)")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("check", help="for CI: exit 1 when findings at a level exist")
    common(p)
    batch(p)
    p.add_argument("--fail-on", choices=("error", "warning"), default="error",
                   help="the lowest severity that fails the check (default: error; choices: "
                        "error, warning)")
    p.add_argument("--min-severity", choices=("error", "warning", "info"), default="info",
                   help="leave out findings below this severity (default: info, none left out)")
    p.add_argument("--ignore", action="append", default=[], metavar="CODE",
                   help="leave out findings with this code (repeatable; default: none)")
    p.add_argument("--baseline", metavar="REPORT.json",
                   help="a JSON report of an earlier run: only findings it does not have fail "
                        "(default: none)")
    formats(p, (*FORMATS, *CI_FORMATS, "none"), "none")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the report here (default: standard output)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("whatif", help="replay the session with the servers' answers changed "
                                      "and compare before and after")
    common(p)
    p.add_argument("--set", action="append", metavar="'URL-PATTERN: Header-Name: value'",
                   help="change a response header on the URLs a pattern covers (repeatable; "
                        "'+X-Trace-Id' adds to a list, '-X' removes, an empty value drops "
                        "the header, ':status: 204' answers preflights with 204; default: none)")
    p.add_argument("--policy", metavar="FILE",
                   help="the JSON of `corsflow policy`: servers answer as their proposed "
                        "policy says (default: none)")
    formats(p, ("text", "json", "markdown", "html"), "text")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the comparison here (default: standard output)")
    p.set_defaults(func=cmd_whatif)

    p = sub.add_parser("explain", help="the full decision trace of one request")
    common(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", help="the exchange id from the report (e.g. e12, p345)")
    which.add_argument("--url", help="every exchange whose URL contains this text")
    formats(p, ("text", "json"), "text")
    p.set_defaults(func=cmd_explain)

    from .policy.formats import FORMATS as POLICY_FORMATS

    p = sub.add_parser("policy", help="each server's CORS policy: observed, proposed, and as "
                                      "server configuration")
    common(p)
    p.add_argument("--server", metavar="ORIGIN", help="only this server origin")
    p.add_argument("--format", choices=POLICY_FORMATS, default="text",
                   help="text (default), json (the policy JSON), or the configuration for "
                        "a server kind")
    p.add_argument("-o", "--output", metavar="FILE", help="write here, not stdout")
    p.set_defaults(func=cmd_policy)

    p = sub.add_parser(
        "probe", help="ask a server you own how it answers chosen origins (sends requests)",
        description="Send one request per --origin to URL (and nowhere else), without "
                    "cookies or credentials, and review the CORS answers. Only for servers "
                    "you own or may test.")
    p.add_argument("url", metavar="URL")
    p.add_argument("--origin", action="append", required=True,
                   help="an Origin to send (repeat: each is one request)")
    p.add_argument("--method", default="GET", help="the request's method (default: GET)")
    p.add_argument("--preflight", metavar="METHOD",
                   help="send an OPTIONS preflight asking for METHOD instead of the request "
                        "(default: the request itself)")
    p.add_argument("--request-header", action="append", metavar="NAME",
                   help="a header name the preflight asks for; repeatable (default: none)")
    p.add_argument("--replay", metavar="CAPTURE",
                   help="replay what exchange --id of this capture sent (its method, or what "
                        "its preflight asked for), to URL (default: none)")
    p.add_argument("--id", help="with --replay: the exchange id, e.g. e12 (default: none)")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser(
        "completion", help="print shell completion code",
        description="Print the code that makes your shell complete corsflow's commands and "
                    "options. bash: add `eval \"$(corsflow completion bash)\"` to ~/.bashrc; "
                    "zsh: the same in ~/.zshrc; fish: `corsflow completion fish > "
                    "~/.config/fish/completions/corsflow.fish`.")
    p.add_argument("shell", choices=SHELLS, help=f"the shell (choices: {', '.join(SHELLS)})")
    p.set_defaults(func=cmd_completion)

    p = sub.add_parser("addon-path", help="print the file to load with mitmdump -s")
    p.set_defaults(func=cmd_addon_path)

    p = sub.add_parser("live", help="run a mitmproxy (mitmdump) with the corsflow addon")
    p.add_argument("--listen-host", default="127.0.0.1",
                   help="the proxy's address (default: 127.0.0.1)")
    p.add_argument("--listen-port", type=int, default=8080,
                   help="the proxy's port (default: 8080)")
    engine(p, detect=False)
    p.add_argument("--report", metavar="PATH",
                   help="write the report here on exit: .json, or .html for the page "
                        "(default: none)")
    p.add_argument("--browser", nargs="?", const="auto", metavar="PATH",
                   help="start Chromium, Chrome or Edge through the proxy with a throwaway "
                        "profile that trusts mitmproxy's CA, so HTTPS works at once; closing "
                        "it stops the proxy (default: none; alone: the first one installed)")
    p.add_argument("--url", default="about:blank",
                   help="the page --browser opens (default: about:blank)")
    p.add_argument("--browser-arg", action="append", default=[], metavar="ARG",
                   help="one more browser argument, e.g. --browser-arg=--headless=new "
                        "(repeatable)")
    p.add_argument("--save", metavar="PATH",
                   help="save every flow here once corsflow has marked and commented it, "
                        "for mitmproxy or `corsflow analyze` later (default: none; mitmdump's "
                        "-w writes flows before they are marked)")
    p.add_argument("--web", type=int, metavar="PORT",
                   help="serve the live report page on http://127.0.0.1:PORT/, updated as "
                        "flows arrive (default: none)")
    p.add_argument("mitmdump_args", nargs=argparse.REMAINDER, metavar="-- MITMDUMP-ARGS",
                   help="further mitmdump arguments, after --")
    p.set_defaults(func=cmd_live)
    return parser


def _utf8_output() -> None:
    """Reports are UTF-8 whatever the locale (LANG=C included), and text that cannot be
    encoded (a lone surrogate from a damaged capture) is escaped, never an exception."""
    for stream, encoding in ((sys.stdout, "utf-8"), (sys.stderr, None)):
        if isinstance(stream, io.TextIOWrapper):
            try:
                stream.reconfigure(encoding=encoding, errors="backslashreplace")
            except (ValueError, OSError):
                pass  # a stream already read from or closed keeps what it has


def _one_line(text: str, limit: int = 300) -> str:
    from .report.text import safe

    line = safe(" ".join(text.split()))
    return line if len(line) <= limit else line[: limit - 3] + "..."


def internal_error(exc: BaseException) -> str:
    """The one line for a bug: the exception and the innermost corsflow frame it came from."""
    raised = where_raised(exc)
    where = f" at {raised}" if raised else ""
    what = type(exc).__name__ + (f": {exc}" if str(exc) else "")
    return (f"corsflow: internal error (a bug in corsflow, not a finding): {_one_line(what)}"
            f"{where}; CORSFLOW_DEBUG=1 shows the traceback")


def _settle_globals(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Defaults of the options taken before or after the command, and --format checked
    against what the command offers."""
    if not hasattr(args, "quiet"):
        args.quiet = False
    if hasattr(args, "engine_default") and not hasattr(args, "engine"):
        args.engine = args.engine_default
    choices = getattr(args, "format_choices", None)
    if choices is None:
        return
    if not hasattr(args, "format"):
        args.format = args.format_default
    elif args.format not in choices:
        parser.error(f"{args.command} --format: invalid choice: {args.format!r} "
                     f"(choose from {', '.join(choices)})")


@contextlib.contextmanager
def _collecting_less() -> Iterator[None]:
    """Tune the cycle collector for a one-shot command that allocates millions of small
    objects, few of them cyclic: the start-up heap (modules, classes) is frozen out of the
    collector's view and young collections run less often, so the full collections the
    analysis triggers do not walk the same long-lived objects again and again. The
    process's own settings come back on return: ``main`` called from a notebook, a test or
    another program must not leave its caller collecting 140 times less often."""
    threshold = gc.get_threshold()
    if threshold[0] == _GC_YOUNG:  # a nested call (or command()): the outer one restores
        yield
        return
    _collect_less()
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _collect_less() -> None:
    gc.freeze()
    gc.set_threshold(_GC_YOUNG, *gc.get_threshold()[1:])


_GC_YOUNG = 100_000
"""Allocations between young collections (CPython's default is 700): cyclic garbage waits
longer (a few MB at most), and most of what a collection would examine has died by then."""


def main(argv: Sequence[str] | None = None) -> int:
    with _collecting_less():
        return _main(argv)


def command() -> NoReturn:
    """The ``corsflow`` command (and ``python -m corsflow``): :func:`main`, then the
    process ends without tearing its heap down. Freeing a large report's millions of
    objects one by one costs a tenth of a whole analysis, for memory the system takes back
    at once; what must happen at exit (handlers registered with :mod:`atexit`: logging,
    worker pools, temporary files) and the output streams' flush still do. The collector's
    settings are not restored either: back at CPython's, the next allocation would run a
    full collection over the whole report (15 ms for a 100 MB HAR's)."""
    _collect_less()  # main() then leaves them as they are
    code = main()
    atexit._run_exitfuncs()  # what the interpreter's own exit runs first (CPython's API)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass  # the reader went away (| head), or the stream was closed: nothing to add
        except OSError:  # standard error's device failing (main told of standard output's)
            code = code or EXIT_FLUSH
    os._exit(code)


def _flush_output() -> None:
    """Push what standard output still buffers, so that a failure to write it is told
    like any other (the process's exit would otherwise meet it)."""
    with _stdout_errors():
        sys.stdout.flush()


def _main(argv: Sequence[str] | None) -> int:
    _utf8_output()
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions, then we exit
        import argcomplete

        argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    _settle_globals(parser, args)
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.WARNING,
                        format="corsflow: %(message)s", stream=sys.stderr)
    try:
        code = int(args.func(args))
        _flush_output()
        return code
    except CorsflowError as e:
        print(f"corsflow: error: {_one_line(str(e), 1000)}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (| head): not an error of ours.
        sys.stderr.close()
        return EXIT_OK
    except Exception as e:  # the last resort: a bug must not look like a finding
        if os.environ.get("CORSFLOW_DEBUG"):
            raise
        print(internal_error(e), file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        discard_started()  # a reading started for an analysis that did not take it up
