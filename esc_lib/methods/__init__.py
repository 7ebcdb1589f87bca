"""The ways of training a classifier, one module each, found by name.

The registered methods are :data:`REGISTERED`, in the order tables list them
(the baseline, ``supervised``, first); :func:`describe` gives each with its one
line and its settings section, and each module's docstring says what it does.

Each module defines ``METHOD``, a :class:`esc_lib.methods.base.Method`: its
settings section, how its run folders are named and keyed, and
``train(split) -> Trained``.  The orchestrator
(:class:`esc_lib.experiment.Experiment`) loops over the settings' ``methods``
through :func:`get` and knows none of them by name; the settings schema
checks ``methods`` against :func:`names`.

Adding a method is a module here that defines ``METHOD``, its settings section
in :mod:`esc_lib.settings`, its tests, and its name in :data:`REGISTERED`.
Importing this package imports no TensorFlow (each method builds its Keras
pieces on first use).
"""

from __future__ import annotations

import importlib

from esc_lib.methods.base import Method, SplitData, Trained

__all__ = ["REGISTERED", "Method", "SplitData", "Trained", "get", "names", "all_methods", "describe"]

#: The registered methods, in the order tables and figures list them (the baseline first).
REGISTERED = ("supervised", "pretrained", "contrastive", "fixmatch", "selftrain", "meanteacher", "freematch", "mixmatch")

_LOADED: dict[str, Method] = {}


def get(name: str) -> Method:
    """The method registered as ``name``; an unknown name is a ``ValueError`` listing the known ones."""
    if name not in REGISTERED:
        raise ValueError(f"unknown method {name!r}; the methods are {', '.join(REGISTERED)}")
    if name not in _LOADED:
        method = importlib.import_module(f"{__name__}.{name}").METHOD
        if method.name != name:
            raise AssertionError(f"esc_lib.methods.{name} registers itself as {method.name!r}")
        _LOADED[name] = method
    return _LOADED[name]


def names() -> tuple[str, ...]:
    """Every registered method's name, the baseline first."""
    return REGISTERED


def all_methods() -> list[Method]:
    """Every registered method, in :data:`REGISTERED` order."""
    return [get(name) for name in REGISTERED]


def describe() -> list[dict[str, str]]:
    """One row per registered method: ``method``, ``what`` (its one line) and ``settings`` (its section, or '-')."""
    return [{"method": method.name, "what": method.summary, "settings": method.section or "-"} for method in all_methods()]
