"""The environment registry: ``make(name, **config)``, ``list_envs()`` and ``analyzer(name)``.

Factories import their environment lazily so that importing ``environments`` stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable

from environments.base import Environment, EpisodeAnalyzer

_FACTORIES: dict[str, tuple[Callable[..., Environment], str]] = {}
_ANALYZER_FACTORIES: dict[str, Callable[[], EpisodeAnalyzer]] = {}
_ANALYZERS: dict[str, EpisodeAnalyzer] = {}


def register(name: str, factory: Callable[..., Environment], description: str,
             analyzer: Callable[[], EpisodeAnalyzer] | None = None) -> None:
    """Register an environment factory under ``name``.

    ``analyzer`` builds the environment's :class:`EpisodeAnalyzer` without building the environment
    (for environments that are expensive to start); without it, ``analyzer(name)`` asks a default
    instance's ``Environment.analyzer()``.
    """
    _FACTORIES[name] = (factory, description)
    _ANALYZERS.pop(name, None)
    if analyzer is None:
        _ANALYZER_FACTORIES.pop(name, None)
    else:
        _ANALYZER_FACTORIES[name] = analyzer


def analyzer(name: str) -> EpisodeAnalyzer:
    """How episodes of environment ``name`` read (``Trajectory.env``); the generic
    :class:`EpisodeAnalyzer` for a name that is not registered (episodes from elsewhere)."""
    if name not in _ANALYZERS:
        if name in _ANALYZER_FACTORIES:
            _ANALYZERS[name] = _ANALYZER_FACTORIES[name]()
        elif name in _FACTORIES:
            with make(name) as env:
                _ANALYZERS[name] = env.analyzer()
        else:
            return EpisodeAnalyzer()
    return _ANALYZERS[name]


def make(name: str, **config: object) -> Environment:
    """Build a registered environment, e.g. ``make("sokoban", variant="1box", max_steps=40)``."""
    if name not in _FACTORIES:
        raise KeyError(f"unknown environment {name!r}; available: {', '.join(list_envs())}")
    return _FACTORIES[name][0](**config)


def task_ids(name: str, split: str, limit: int | None = None, **config: object) -> list[str]:
    """The first ``limit`` (default all) task ids of a split of environment ``name``."""
    with make(name, **config) as env:
        return env.task_ids(split)[:limit]


def list_envs() -> list[str]:
    """Names of the registered environments."""
    return sorted(_FACTORIES)


def describe_envs() -> dict[str, str]:
    """Name -> one-line description of each registered environment."""
    return {name: _FACTORIES[name][1] for name in list_envs()}


def _sokoban(**config: object) -> Environment:
    from environments.sokoban import SokobanEnv

    return SokobanEnv(**config)  # type: ignore[arg-type]


def _apps(**config: object) -> Environment:
    from environments.apps import AppsEnv

    return AppsEnv(**config)  # type: ignore[arg-type]


def _appworld(**config: object) -> Environment:
    from environments.appworld_bridge import AppWorldEnv

    return AppWorldEnv(**config)  # type: ignore[arg-type]


def _appworld_analyzer() -> EpisodeAnalyzer:
    from environments.apps.analysis import AppsAnalyzer

    return AppsAnalyzer()


register("sokoban", _sokoban, "text Sokoban (6x6; variants 2box, 1box), dense rewards")
register("apps", _apps, "offline AppWorld-style app suite; actions are Python code run in a sandbox")
register("appworld", _appworld, "the real AppWorld through a bridge process in its own virtualenv",
         analyzer=_appworld_analyzer)  # building it starts the bridge
