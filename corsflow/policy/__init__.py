"""A server's CORS policy: observed in a capture, proposed, and written as server configuration.

:mod:`corsflow.policy.model` holds the policy data, its JSON form and :func:`answer` (what a
server implementing a policy sends); the other modules derive policies from an analysis and
write configurations for each kind of server.
"""

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

__all__ = [
    "Difference", "PathRule", "Policy", "PolicyDocument", "PolicyError", "ServerPolicy",
    "ServerPolicyRules", "answer", "policy_from_json", "policy_to_json",
]
