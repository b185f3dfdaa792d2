"""Agents by name: ``solution``, ``null``, ``scripted:FILE`` and ``PROVIDER:MODEL``.

An :class:`Agent` makes one chat model per episode (scripted ones need the
episode's rendered solution). Chat models come from LangChain: ``openai:NAME``
(``ChatOpenAI``, any OpenAI-compatible server with ``base_url``) and
``anthropic:NAME`` (``ChatAnthropic``). API keys come only from the environment
(``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``); they never reach the sandbox or the
record.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hazmat.errors import ConfigError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = ["Agent", "resolve_agent"]

PROVIDERS = ("openai", "anthropic")


@dataclass(frozen=True)
class Agent:
    """A named agent that can make a fresh chat model for each episode."""

    name: str
    kind: str
    """``solution``, ``null``, ``scripted``, ``openai`` or ``anthropic``."""
    model: str = ""
    base_url: str | None = None
    script: list[dict[str, Any]] = field(default_factory=list)
    repeat: bool = False
    request_timeout: float = 120.0
    source: str = ""
    """For ``scripted``: the absolute path of the script file."""

    @property
    def spec(self) -> str:
        """The name that :func:`resolve_agent` turns back into this agent (for resume)."""
        return f"scripted:{self.source}" if self.kind == "scripted" and self.source else self.name

    @property
    def is_scripted(self) -> bool:
        """True for agents that need no model endpoint."""
        return self.kind in ("solution", "null", "scripted")

    def missing_key(self) -> str | None:
        """Why this agent cannot make a model here (its API key is not set), or None."""
        if self.kind == "openai" and not os.environ.get("OPENAI_API_KEY") and not self.base_url:
            return (
                f"agent {self.name} needs OPENAI_API_KEY "
                "(export OPENAI_API_KEY, or pass --base-url for a local server)"
            )
        if self.kind == "anthropic" and not os.environ.get("ANTHROPIC_API_KEY"):
            return f"agent {self.name} needs ANTHROPIC_API_KEY (export ANTHROPIC_API_KEY)"
        return None

    def make_model(self, solution: list[dict[str, Any]] | None = None) -> BaseChatModel:
        """A fresh chat model for one episode.

        ``solution`` is the episode's rendered reference moves (for ``solution``).

        Raises:
            ConfigError: a provider needs an API key that is not set.
        """
        from hazmat.agents.scripted import ScriptedChatModel

        if self.kind == "solution":
            return ScriptedChatModel(turns=list(solution or []), label=self.name)
        if self.kind == "null":
            return ScriptedChatModel(turns=[{"tool": "submit", "answer": ""}], label=self.name)
        if self.kind == "scripted":
            return ScriptedChatModel(turns=list(self.script), repeat=self.repeat, label=self.name)
        if self.kind == "openai":
            return _openai(self)
        if self.kind == "anthropic":
            return _anthropic(self)
        raise ConfigError(f"unknown agent kind {self.kind!r}")  # pragma: no cover


def _openai(agent: Agent) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    key = os.environ.get("OPENAI_API_KEY")
    if not key:
        if agent.base_url is None:
            raise ConfigError(
                f"agent openai:{agent.model} needs OPENAI_API_KEY",
                hint="export OPENAI_API_KEY, or pass --base-url for a local server",
            )
        key = "no-key"  # local OpenAI-compatible servers accept any key
    return ChatOpenAI(
        model=agent.model,
        base_url=agent.base_url,
        api_key=key,
        max_retries=0,  # hazmat retries with its own bounded backoff
        timeout=agent.request_timeout,
    )


def _anthropic(agent: Agent) -> BaseChatModel:
    from langchain_anthropic import ChatAnthropic

    key = os.environ.get("ANTHROPIC_API_KEY")
    if not key:
        raise ConfigError(
            f"agent anthropic:{agent.model} needs ANTHROPIC_API_KEY",
            hint="export ANTHROPIC_API_KEY",
        )
    kwargs: dict[str, Any] = {
        "model": agent.model,
        "api_key": key,
        "max_retries": 0,
        "timeout": agent.request_timeout,
    }
    if agent.base_url:
        kwargs["base_url"] = agent.base_url
    return ChatAnthropic(**kwargs)


def resolve_agent(spec: str, *, base_url: str | None = None) -> Agent:
    """Turn an agent name from the CLI into an :class:`Agent`.

    Raises:
        ConfigError: the name is not ``solution``, ``null``, ``scripted:FILE`` or
            ``PROVIDER:MODEL`` with a known provider, or the script file is bad.
    """
    if spec in ("solution", "null"):
        return Agent(name=spec, kind=spec)
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise ConfigError(
            f"unknown agent {spec!r}",
            hint="use solution, null, scripted:FILE, or PROVIDER:MODEL (openai:..., anthropic:...)",
        )
    if kind == "scripted":
        from hazmat.agents.scripted import load_script

        turns, repeat = load_script(Path(rest))
        return Agent(
            name=spec,
            kind="scripted",
            script=turns,
            repeat=repeat,
            source=str(Path(rest).resolve()),
        )
    if kind in PROVIDERS:
        return Agent(name=spec, kind=kind, model=rest, base_url=base_url)
    raise ConfigError(
        f"unknown model provider {kind!r} in agent {spec!r}",
        hint=f"providers: {', '.join(PROVIDERS)}; or openai:NAME --base-url URL for any "
        "OpenAI-compatible server",
    )
