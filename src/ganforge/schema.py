"""Value checks shared by every config-like schema: the config sections, regularizer and augment parameters.

They sit below everything that validates user input (`config`, `regularizers`, `augment`), so those modules
need not import one another for a type check.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from ganforge.errors import ConfigError


def coerce(value: Any, hint: Any, key: str) -> Any:
    """Check `value` against a type hint (ints are accepted for floats); raise ConfigError naming `key`."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"config key {key!r} has a bad value {value!r}")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r} must be a list, got {value!r}")
        return [coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)] if args else list(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r} must be a mapping, got {value!r}")
        if not args:
            return dict(value)
        return {coerce(k, args[0], key): coerce(v if v is not None else {}, args[1], f"{key}.{k}")
                for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r} must be an integer, got {value!r}")
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value)
            if value != value or value in (float("inf"), float("-inf")):
                raise ConfigError(f"config key {key!r} must be a finite number, got {value!r}")
            return value
        raise ConfigError(f"config key {key!r} must be a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config key {key!r} must be a string, got {value!r}")
    return value


def keyed(key: str, build: typing.Callable[[], Any]) -> Any:
    """Return build(); a ConfigError it raises (a registry lookup, a constructor) is prefixed with the key."""
    try:
        return build()
    except ConfigError as err:
        raise ConfigError(f"{key}: {err}") from None


def positive(key: str, value: int | None, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or value <= 0:
        raise ConfigError(f"{key} must be > 0, got {value}")
