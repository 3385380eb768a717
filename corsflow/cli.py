"""The ``corsflow`` command: parse arguments, call the library, render, return an exit code.

Exit codes: 0 the analysis ran (whatever it found); 1 ``check`` found findings at the level
asked for; 2 bad input or usage (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from . import __version__
from .analysis import Report, analyze_paths
from .engine.profiles import PROFILES
from .errors import CorsflowError, UsageError
from .report.inert import visible

if TYPE_CHECKING:
    from .fleet import FleetReport, SessionResult

FORMATS = ("text", "json", "csv", "markdown", "html")
ALL_FORMATS = (*FORMATS, "none")
"""Every --format some command takes (given before the command, it is checked after)."""


def _render(report: Report, fmt: str, stream: TextIO | None, security: bool = False) -> str:
    if fmt == "json":
        from .report.json import render_json

        return render_json(report)
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

    return render_text(report, color=_wants_color(stream), security_only=security)


def _wants_color(stream: TextIO | None) -> bool | None:
    """None lets the renderer look at the terminal; a file never gets colour codes."""
    return None if stream is sys.stdout else False


def _emit(text: str, output: str | None) -> None:
    if output is None or output == "-":
        sys.stdout.write(text)
        return
    try:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise UsageError(f"{output}: cannot write: {e.strerror or e}") from None
    logging.getLogger("corsflow").info("wrote %s", output)


def _target(output: str | None) -> TextIO | None:
    """The stream colour is decided for: stdout, or none when writing to a file."""
    return sys.stdout if output in (None, "-") else None


LARGE_INPUT = 20 * 1024 * 1024
"""Inputs above this many bytes in all get a progress line on stderr (when it is a terminal)."""


def _analyze(args: argparse.Namespace) -> Report:
    """The report the outputs are made from."""
    return _for_output(args, _analyze_paths(args))


def _for_output(args: argparse.Namespace, report: Report) -> Report:
    """Secrets redacted unless ``--no-redact``: reports travel in tickets and CI logs."""
    if getattr(args, "no_redact", False):
        return report
    from .redact import redact_report

    return redact_report(report)


def _analyze_paths(args: argparse.Namespace) -> Report:
    """analyze_paths, with a progress display on stderr for large inputs read at a terminal."""
    size = 0
    for path in args.paths:
        try:
            size += os.path.getsize(path)
        except OSError:
            pass  # analyze_paths names the file that cannot be read
    if args.quiet or size < LARGE_INPUT or not sys.stderr.isatty():
        return analyze_paths(args.paths, engine=args.engine)
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("reading", total=None)

        def show(path: str, count: int) -> None:
            bar.update(task, description=f"{os.path.basename(path)}: {count:,} exchanges")

        return analyze_paths(args.paths, engine=args.engine, progress=show)


def _emit_json(report: Report, output: str | None) -> None:
    """JSON is written as it is serialised: the largest reports are JSON ones."""
    from .report.json import iter_json

    if output is None or output == "-":
        for chunk in iter_json(report):
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
        return
    try:
        with open(output, "wb") as f:
            for chunk in iter_json(report):
                f.write(chunk)
    except OSError as e:
        raise UsageError(f"{output}: cannot write: {e.strerror or e}") from None


def _security_view(report: Report) -> Report:
    """``--security``: the passive security review's findings alone."""
    from .findings.security import is_security

    return dataclasses.replace(report, findings=tuple(filter(is_security, report.findings)))


def _analyze_fleet(args: argparse.Namespace) -> FleetReport:
    """Each file its own session, in parallel; a progress bar over files and bytes at a
    terminal."""
    from .api import expand_fleet
    from .fleet import analyze_fleet

    paths = expand_fleet(args.paths)
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


def cmd_analyze(args: argparse.Namespace) -> int:
    if args.batch:
        _emit(_render_fleet(_analyze_fleet(args), args.format), args.output)
        return 0
    report = _analyze(args)
    if args.security:
        report = _security_view(report)
    if args.format == "json":
        _emit_json(report, args.output)
    else:
        _emit(_render(report, args.format, _target(args.output), args.security), args.output)
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
    report = _analyze(args)
    failing = [f for f in report.findings if f.severity in levels]
    if args.format != "none":
        _emit(_render(report, args.format, _target(args.output)), args.output)
    for f in failing[:20]:
        print(f"corsflow check: {f.severity} {f.code}: {visible(f.message)}", file=sys.stderr)
    if len(failing) > 20:
        print(f"corsflow: ... and {len(failing) - 20} more", file=sys.stderr)
    print(f"corsflow: check {'failed' if failing else 'passed'}: {len(failing)} finding(s) at "
          f"level {args.fail_on} or above", file=sys.stderr)
    return 1 if failing else 0


def cmd_explain(args: argparse.Namespace) -> int:
    from .report.explain import explain

    report = _for_output(args, analyze_paths(args.paths, engine=args.engine))
    if args.id:
        chosen = [v for v in report.exchanges if v.exchange.id == args.id]
        if not chosen:
            raise UsageError(f"no exchange with id {args.id!r} (ids look like "
                             f"{', '.join(v.exchange.id for v in report.exchanges[:3]) or 'e0'})")
    else:
        chosen = [v for v in report.exchanges if args.url in v.exchange.url]
        if not chosen:
            raise UsageError(f"no exchange whose URL contains {args.url!r}")
    sys.stdout.write("\n\n".join(explain(v, report) for v in chosen) + "\n")
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
    sys.stdout.write(render(answers, report))
    return 0


def _mitmproxy_missing() -> UsageError:
    return UsageError("mitmproxy is not installed: pip install 'corsflow[mitmproxy]'")


def cmd_addon_path(args: argparse.Namespace) -> int:
    try:
        from .addon import addon_path
    except ImportError:
        raise _mitmproxy_missing() from None
    print(addon_path())
    return 0


def cmd_live(args: argparse.Namespace) -> int:
    try:
        from .addon import run_live
    except ImportError:
        raise _mitmproxy_missing() from None
    if args.report and not args.report.lower().endswith(REPORT_SUFFIXES):
        raise UsageError(f"--report {args.report}: the live report is written as .json or "
                         ".html; give a name ending in one of them")
    settings: list[tuple[str, str]] = []
    if args.browser is not None:
        settings += [("corsflow_browser", args.browser), ("corsflow_browser_url", args.url)]
        if args.browser_arg:
            settings.append(("corsflow_browser_args", " ".join(args.browser_arg)))
    if args.web is not None:
        settings.append(("corsflow_web_port", str(args.web)))
    extra = [a for a in args.mitmdump_args if a != "--"]
    return run_live(args.listen_host, args.listen_port, args.report, args.engine, extra,
                    settings=settings)


REPORT_SUFFIXES = (".json", ".html", ".htm")


SHELLS = ("bash", "zsh", "fish")


def cmd_completion(args: argparse.Namespace) -> int:
    """Print the shell code that completes corsflow's commands, options and file names."""
    from argcomplete.shell_integration import shellcode

    sys.stdout.write(shellcode(["corsflow"], shell=args.shell))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corsflow",
        description="Explain what the browser did with every cross-origin request in a "
                    "captured session (HAR, pcap/pcapng, mitmproxy flows).")
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

    def engine(p: argparse.ArgumentParser) -> None:
        p.add_argument("--engine", choices=sorted(PROFILES), default=argparse.SUPPRESS,
                       help="the browser whose preflight cache and checks to model "
                            f"(default: chromium; choices: {', '.join(sorted(PROFILES))})")
        p.set_defaults(engine_default="chromium")

    def formats(p: argparse.ArgumentParser, choices: Sequence[str], default: str) -> None:
        p.add_argument("--format", choices=choices, default=argparse.SUPPRESS,
                       help=f"the report's format (default: {default}; choices: "
                            f"{', '.join(choices)})")
        p.set_defaults(format_choices=tuple(choices), format_default=default)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("paths", nargs="+", metavar="PATH",
                       help="capture files; the format is detected from the content")
        engine(p)
        p.add_argument("--no-redact", action="store_true",
                       help="keep Cookie, Authorization and URL token values in the output "
                            "(default: off: they are replaced with REDACTED)")

    def batch(p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("many captures (each file its own browser session)")
        g.add_argument("--batch", action="store_true",
                       help="analyse each file (or each capture under a directory) as its own "
                            "session, in parallel, and merge the results (default: off: all "
                            "files are one session)")
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
    formats(p, (*FORMATS, "none"), "none")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the report here (default: standard output)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("explain", help="the full decision trace of one request")
    common(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", help="the exchange id from the report (e.g. e12, p345)")
    which.add_argument("--url", help="every exchange whose URL contains this text")
    p.set_defaults(func=cmd_explain)

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
    engine(p)
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
    p.add_argument("--web", type=int, metavar="PORT",
                   help="serve the live report page on http://127.0.0.1:PORT/, updated as "
                        "flows arrive (default: none)")
    p.add_argument("mitmdump_args", nargs=argparse.REMAINDER, metavar="-- MITMDUMP-ARGS",
                   help="further mitmdump arguments, after --")
    p.set_defaults(func=cmd_live)
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions, then we exit
        import argcomplete

        argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    _settle_globals(parser, args)
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.WARNING,
                        format="corsflow: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args))
    except CorsflowError as e:
        print(f"corsflow: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (| head): not an error of ours.
        sys.stderr.close()
        return 0
