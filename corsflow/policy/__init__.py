"""A server's CORS policy: observed in a capture, proposed, and written as server configuration.

:mod:`corsflow.policy.model` holds the policy data, its JSON form and :func:`answer` (what a
server implementing a policy sends); the other modules derive policies from an analysis and
write configurations for each kind of server.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import (
        Difference,
        PathRule,
        Policy,
        PolicyDocument,
        PolicyError,
        ServerPolicy,
        ServerPolicyRules,
        answer,
        policy_from_json,
        policy_to_json,
    )


def __getattr__(name: str) -> Any:
    """The names above, from :mod:`.model` on first use: a command that never touches a
    policy (``analyze``) does not pay for importing it when it only needs a submodule."""
    if name in __all__:
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Difference", "PathRule", "Policy", "PolicyDocument", "PolicyError", "ServerPolicy",
    "ServerPolicyRules", "answer", "policy_from_json", "policy_to_json",
]
