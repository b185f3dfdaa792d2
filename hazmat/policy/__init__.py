"""The policy layer: rules that see every action, log it, block it or halt the episode.

Public API::

    from hazmat.policy import load_policy, ToolCall, Observation
    policy = load_policy({"extends": "default", "allow": ["reconnaissance"]}, base_dir=task_dir)
    session = policy.session(secrets={"flag": flag})
    decision = session.before(call)          # allow | log | block | halt, with every rule matched
    decision = session.after(observation)    # output + monitor signals

See :mod:`hazmat.policy.rules` for the YAML format, :mod:`hazmat.policy.detectors` for
the detector families and :mod:`hazmat.policy.monitors` for after-step monitors.
"""

from __future__ import annotations

from hazmat.policy.base import (
    STRICTNESS,
    Action,
    AllowAllPolicy,
    Decision,
    Observation,
    Policy,
    PolicySession,
    RuleMatch,
    ToolCall,
    strictest,
)
from hazmat.policy.compose import for_task, task_policies
from hazmat.policy.engine import (
    RulePolicy,
    RuleSession,
    load_policy,
    no_terminal_asker,
    terminal_asker,
)
from hazmat.policy.monitors import SandboxMonitor, observe

__all__ = [
    "STRICTNESS",
    "Action",
    "AllowAllPolicy",
    "Decision",
    "Observation",
    "Policy",
    "PolicySession",
    "RuleMatch",
    "RulePolicy",
    "RuleSession",
    "SandboxMonitor",
    "ToolCall",
    "for_task",
    "load_policy",
    "no_terminal_asker",
    "observe",
    "strictest",
    "task_policies",
    "terminal_asker",
]
