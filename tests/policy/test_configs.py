"""Each generated configuration, run by the real server on 127.0.0.1: its answers to the
capture's requests (and to requests the policy must refuse) implement the proposed policy,
i.e. match answer() up to the differences the generator declares in its output."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from corsflow.policy import apache, caddy, nginx
from corsflow.policy.model import ServerPolicy

from ..conftest import need
from .conftest import Case
from .servers import explain, free_port, mismatches, running

pytestmark = pytest.mark.slow


def _binary(name: str, package: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists()
                                  else None)
    if path is None:
        need(name, f"apt-get install {package}")
    assert path is not None
    return path


@contextmanager
def serve_nginx(server: ServerPolicy, tmp: Path) -> Iterator[int]:
    binary = _binary("nginx", "nginx")
    http, srv = nginx.split(nginx.generate(server))
    port = free_port()
    for d in ("logs", "tmp"):
        (tmp / d).mkdir(exist_ok=True)
    temps = "".join(f"    {kind}_temp_path {tmp}/tmp/{kind};\n"
                    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp / "nginx.conf").write_text(
        f"worker_processes 1;\nerror_log {tmp}/logs/error.log;\npid {tmp}/nginx.pid;\n"
        "events { worker_connections 64; }\n"
        f"http {{\n    access_log off;\n{temps}{http}\n"
        f"    server {{\n        listen 127.0.0.1:{port};\n{srv}\n"
        '        location / { return 200 "ok\\n"; }\n    }\n}\n')
    cmd = [binary, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", f"{tmp}/logs/error.log",
           "-g", "daemon off;"]
    with running(cmd, port, tmp / "out.log"):
        yield port


@contextmanager
def serve_apache(server: ServerPolicy, tmp: Path) -> Iterator[int]:
    binary = _binary("apache2", "apache2")
    port = free_port()
    (tmp / "htdocs").mkdir(exist_ok=True)
    (tmp / "htdocs" / "index.html").write_text("ok\n")
    modules = "".join(f"LoadModule {name}_module /usr/lib/apache2/modules/mod_{name}.so\n"
                      for name in ("mpm_event", "authz_core", "headers", "rewrite"))
    (tmp / "httpd.conf").write_text(
        f"ServerRoot {tmp}\nListen 127.0.0.1:{port}\nServerName 127.0.0.1\n{modules}"
        f"PidFile {tmp}/httpd.pid\nErrorLog {tmp}/error.log\nDefaultRuntimeDir {tmp}\n"
        f"Mutex file:{tmp}\nUser www-data\nGroup www-data\n"
        f"<VirtualHost 127.0.0.1:{port}>\nDocumentRoot {tmp}/htdocs\n"
        f"{apache.generate(server)}</VirtualHost>\n")
    with running([binary, "-X", "-f", str(tmp / "httpd.conf")], port, tmp / "out.log"):
        yield port


@contextmanager
def serve_caddy(server: ServerPolicy, tmp: Path) -> Iterator[int]:
    binary = _binary("caddy", "caddy")
    port = free_port()
    (tmp / "Caddyfile").write_text(
        f"{{\n    admin off\n    auto_https off\n    storage file_system {tmp}/data\n}}\n"
        f"http://127.0.0.1:{port} {{\n{caddy.generate(server)}\nrespond \"ok\" 200\n}}\n")
    cmd = [binary, "run", "--config", str(tmp / "Caddyfile"), "--adapter", "caddyfile"]
    with running(cmd, port, tmp / "out.log", env={"HOME": str(tmp), "XDG_DATA_HOME": str(tmp),
                                                  "XDG_CONFIG_HOME": str(tmp)}):
        yield port


SERVERS = {"caddy": (serve_caddy, caddy.DEVIATIONS),
           "nginx": (serve_nginx, nginx.DEVIATIONS),
           "apache": (serve_apache, apache.DEVIATIONS)}


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_generated_configuration_implements_the_policy(kind: str, cases: list[Case],
                                                       tmp_path: Path) -> None:
    serve, deviations = SERVERS[kind]
    for case in cases:
        tmp = tmp_path / case.name
        tmp.mkdir()
        probes = case.probes()
        rules = case.server.proposed
        # a policy the server does not implement: the same replay must tell them apart
        other = dataclasses.replace(rules, default=dataclasses.replace(
            rules.default, max_age=(rules.default.max_age or 0) + 1,
            allow_credentials=not rules.default.allow_credentials))
        with serve(case.server, tmp) as port:
            found = mismatches(port, rules, probes)
            assert mismatches(port, other, probes), f"{kind}, {case.name}: the replay has no teeth"
        unexpected = [f for f in found if f[3].kind not in deviations]
        assert not unexpected, f"{kind}, {case.name}:\n{explain(unexpected)}"
        # the replay covered allowed and refused answers alike
        assert any(p.preflight for p in probes) and any(not p.preflight for p in probes)
