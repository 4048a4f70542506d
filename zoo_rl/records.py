"""One validator for the project's config records (dataclasses): the RL run config and the
vision config are read from YAML and the command line through it, so a wrong key or type is
the same one-line :class:`ConfigError` naming the file and key on both paths."""

from __future__ import annotations

import types
from dataclasses import MISSING, fields
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from zoo_rl.errors import ConfigError

Record = TypeVar("Record")
_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               type(None): "null"}  # fmt: skip


def _matches(value: Any, hint: Any) -> bool:
    origin, args = get_origin(hint) or hint, get_args(hint)
    if origin is Any:
        return True
    if origin in (types.UnionType,):
        return any(_matches(value, a) for a in args)
    if isinstance(value, bool):  # a bool is an int to Python, not to a config
        return origin is bool
    if origin is float:
        return isinstance(value, int | float)
    if origin is list:
        return isinstance(value, list) and (not args or all(_matches(v, args[0]) for v in value))
    if origin is dict:
        return isinstance(value, dict) and (not args or all(_matches(k, args[0]) and _matches(v, args[1])
                                                             for k, v in value.items()))  # fmt: skip
    return isinstance(value, origin)


def _describe(hint: Any) -> str:
    origin, args = get_origin(hint) or hint, get_args(hint)
    if origin is types.UnionType:
        return " or ".join(_describe(a) for a in args)
    if origin is list:
        return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s" if args else "a list"
    if origin is dict:
        return "a mapping with string keys"
    return _TYPE_NAMES.get(origin, getattr(origin, "__name__", str(origin)))


def check_types(record: Any) -> None:
    """Every field of the dataclass instance ``record`` matches its annotation."""
    hints = get_type_hints(type(record))
    for f in fields(record):
        value = getattr(record, f.name)
        if not _matches(value, hints[f.name]):
            raise ConfigError(f"{f.name} must be {_describe(hints[f.name])}, got {value!r:.80}")


def from_mapping(cls: type[Record], data: Any, where: str) -> Record:
    """``cls(**data)`` checked: unknown and missing keys and the record's own checks are
    :class:`ConfigError` s naming ``where``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - {f.name for f in fields(cls)}, key=str)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}")
    missing = sorted(f.name for f in fields(cls) if f.name not in data and f.default is MISSING
                     and f.default_factory is MISSING)  # fmt: skip
    if missing:
        raise ConfigError(f"{where}: missing key(s) {missing}")
    try:
        return cls(**data)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from err
