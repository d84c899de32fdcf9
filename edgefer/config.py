"""YAML configuration loaded into typed, validated settings.

Every settings class derives from `Settings`, which refuses unknown keys. `load_settings` turns any
problem into a `ConfigError` naming the file, the dotted key and what was expected, because a
typo in a recipe should stop a run before it costs an hour of training, not halfway through.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from edgefer.redact import redact


class ConfigError(ValueError):
    """A configuration file or override that cannot be used; the message says where and why."""


class Settings(BaseModel):
    """Base for every settings block: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


S = TypeVar("S", bound=Settings)


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def parse_overrides(overrides: Iterable[str]) -> dict[str, Any]:
    """`key.sub=value` strings (values parsed as YAML scalars/lists) into a nested dict."""
    tree: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. train.epochs=3)")
        key, text = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {item!r} has an empty key")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({exc})") from exc
        _set_dotted(tree, key, value)
    return tree


def merge_nested(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` laid over `base`, section by section: a nested mapping is merged key by key, so
    `--set heatmap.opacity=0.3` keeps the profile's `heatmap.mode`; any other value replaces."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_nested(out[key], value)
        else:
            out[key] = value
    return out


def _describe(errors: Sequence[Mapping[str, Any]], source: str) -> str:
    lines = []
    for err in errors:
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        if err["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key {key!r} (not a setting; check the spelling)")
        elif err["type"] == "missing":
            lines.append(f"{source}: missing required key {key!r}")
        else:
            # The input may be a URL with a password (a camera, a broker): masked like every source.
            got = "" if "(got " in err["msg"] else f" (got {redact(repr(err.get('input')))})"  # said once
            lines.append(f"{source}: key {key!r}: {err['msg']}{got}")
    return "\n".join(lines)


def validate_settings(cls: type[S], data: dict[str, Any], source: str) -> S:
    """Validate a dict into `cls`, raising ConfigError that names `source` and each bad key."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc.errors(), source)) from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file, bad YAML or a non-mapping top level is a ConfigError."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{p}: is a folder, not a config file")
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the config file ({exc.strerror or exc})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Name the file and where: a profile saved as Latin-1 by an editor is a common slip.
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{p}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line}, offset {exc.start}); "
            "save the file as UTF-8"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping of keys, not {type(data).__name__}")
    return data


def load_settings(cls: type[S], path: str | Path | None = None, overrides: Iterable[str] = ()) -> S:
    """Load `path` (optional) plus `key=value` overrides into `cls`, validated.

    Overrides win over the file. Errors name the file (or `overrides`) and the dotted key.
    """
    data = load_yaml(path) if path is not None else {}
    over = parse_overrides(overrides)
    source = str(path) if path is not None else "<defaults>"
    if over:
        source = f"{source} (+ overrides)" if path is not None else "overrides"
    return validate_settings(cls, merge_nested(data, over), source)
