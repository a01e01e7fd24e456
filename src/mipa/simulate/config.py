"""Load and merge the simulation config (YAML) and hash it for the output marker."""

from __future__ import annotations

import copy
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


def default_config() -> dict[str, Any]:
    text = resources.files("mipa.simulate").joinpath("default.yml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def merge(base: dict, override: dict) -> dict:
    """Recursive dict merge: dicts merge key by key, everything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


SCENARIOS: tuple[str, ...] = ("default", "hard")


def scenario_config(name: str) -> dict[str, Any]:
    """The overrides of a named scenario (``scenarios/<name>.yml``; 'default' has none)."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}")
    if name == "default":
        return {}
    text = resources.files("mipa.simulate").joinpath("scenarios", f"{name}.yml").read_text(encoding="utf-8")
    return yaml.safe_load(text) or {}


def load_config(config: str | Path | dict | None = None, scenario: str = "default") -> dict[str, Any]:
    """Defaults, then the named ``scenario``, then a YAML file path or a dict (``None`` =
    nothing more), each merged over the last."""
    cfg = merge(default_config(), scenario_config(scenario))
    if config is None:
        return cfg
    if isinstance(config, dict):
        return merge(cfg, config)
    with open(config, encoding="utf-8") as fh:
        user = yaml.safe_load(fh) or {}
    if not isinstance(user, dict):
        raise ValueError(f"config {config} is not a YAML mapping")
    return merge(cfg, user)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def config_hash(cfg: dict) -> str:
    canonical = json.dumps(_jsonable(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
