"""``--policy FILE``: the policy JSON of ``corsflow policy``, as a change set whose servers
answer with ``corsflow.policy.model.answer`` (the same definition the generated server
configurations are tested against)."""

from __future__ import annotations

import json

from ..errors import UsageError
from ..model import Headers
from .rules import Answer, ChangeSet


def load_policy(path: str) -> ChangeSet:
    from ..policy.model import PolicyError, ServerPolicy, answer, policy_from_json

    try:
        with open(path, "rb") as fp:
            data = json.load(fp)
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e.strerror or e}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: not valid JSON ({e})") from None
    try:
        doc = policy_from_json(data)
    except PolicyError as e:
        raise UsageError(f"{path}: {e}") from None
    if not doc.servers:
        raise UsageError(f"{path}: the policy names no server")

    def answering(server: ServerPolicy) -> Answer:
        def respond(method: str, url: str, request_headers: Headers,
                    preflight: bool) -> Headers | None:
            return answer(server, method, url, request_headers, preflight)
        return respond

    answers = {s.server: answering(s) for s in doc.servers}
    return ChangeSet((), answers, f"the proposed policy of {', '.join(answers)}")
