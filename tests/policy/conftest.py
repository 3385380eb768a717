"""Captures to derive policies from: a real Chromium session from samples/, and generated
sessions with distinct origins, credentials, headers and Max-Age values."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from corsflow.analysis import Report, analyze_paths
from corsflow.policy.derive import derive
from corsflow.policy.model import ServerPolicy
from corsflow.policy.verify import Probe, policy_probes, probes_from_report

from ..conftest import SAMPLES
from .sessions import plain_session, shop_session


@dataclass(frozen=True)
class Case:
    name: str
    report: Report
    server: ServerPolicy

    def probes(self) -> list[Probe]:
        """The capture's own requests, and for every rule requests it must refuse."""
        out = probes_from_report(self.report, self.server.server)
        out += policy_probes(self.server.proposed, "/corsflow-probe")
        for rule in self.server.proposed.paths:
            out += policy_probes(self.server.proposed, rule.path.replace("{id}", "1"))
        return out


@pytest.fixture(scope="session")
def cases(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    tmp = tmp_path_factory.mktemp("sessions")
    out = []
    for name, path in [("sample", SAMPLES / "chromium-session.har"),
                       ("shop", shop_session(tmp / "shop.har")),
                       ("plain", plain_session(tmp / "plain.har"))]:
        report = analyze_paths([str(path)])
        doc = derive(report)
        assert len(doc.servers) == 1
        out.append(Case(name, report, doc.servers[0]))
    return out
