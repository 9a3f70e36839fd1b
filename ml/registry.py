"""Name -> pipeline table (STYLE.md "Plug-ins by registry").

Built-in pipelines are registered lazily: listing names and config schemas
imports only each pipeline's light ``config`` module, not torch, so the web
process can answer ``GET /api/pipelines/`` cheaply.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ml.base import Pipeline

# name -> (package holding the Pipeline class and a light `config` module, class name)
_BUILTIN: dict[str, tuple[str, str]] = {
    "ae": ("ml.pipelines.ae", "AEPipeline"),
    "dfr": ("ml.pipelines.dfr", "DFRPipeline"),
    "ganomaly": ("ml.pipelines.ganomaly", "GANomalyPipeline"),
    "patchcore": ("ml.pipelines.patchcore", "PatchCorePipeline"),
    "riad": ("ml.pipelines.riad", "RIADPipeline"),
    "seg_ood": ("ml.pipelines.seg_ood", "SegOODPipeline"),
    "smai": ("ml.pipelines.smai", "SMAIPipeline"),
    "unet": ("ml.pipelines.unet", "UNetPipeline"),
    "utad": ("ml.pipelines.utad", "UTADPipeline"),
}
_REGISTERED: dict[str, type["Pipeline"]] = {}


class UnknownPipeline(KeyError):
    def __init__(self, name: str):
        self.name = name
        super().__init__(f"unknown pipeline {name!r}; known pipelines: {', '.join(names())}")

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return self.args[0]


def register(cls: type["Pipeline"]) -> type["Pipeline"]:
    """Class decorator: add a pipeline under ``cls.name``; duplicates are refused."""
    existing = _REGISTERED.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"pipeline name {cls.name!r} is already registered by {existing.__module__}.{existing.__qualname__}")
    _REGISTERED[cls.name] = cls
    return cls


def names() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTERED))


def builtin_names() -> list[str]:
    """The pipelines this library ships (plug-ins registered at run time excluded)."""
    return sorted(_BUILTIN)


def get(name: str) -> type["Pipeline"]:
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in _BUILTIN:
        raise UnknownPipeline(name)
    module, attr = _BUILTIN[name]
    cls = getattr(importlib.import_module(module), attr)
    _REGISTERED.setdefault(name, cls)
    return cls


def config_class(name: str):
    """The config dataclass of a pipeline, imported without torch."""
    if name in _REGISTERED:
        return _REGISTERED[name].config_class
    if name not in _BUILTIN:
        raise UnknownPipeline(name)
    module = importlib.import_module(_BUILTIN[name][0] + ".config")
    return module.CONFIG_CLASS


def describe(name: str) -> dict[str, Any]:
    """name, supervision, description and JSON schema of the config, without torch."""
    if name in _REGISTERED:
        return _REGISTERED[name].describe()
    if name not in _BUILTIN:
        raise UnknownPipeline(name)
    module = importlib.import_module(_BUILTIN[name][0] + ".config")
    return {
        "name": name,
        "supervision": module.SUPERVISION,
        "description": module.DESCRIPTION,
        "config_schema": module.CONFIG_CLASS.json_schema(),
        "presets": module.CONFIG_CLASS.preset_table(),
    }


def available() -> list[dict[str, Any]]:
    return [describe(n) for n in names()]


def presets(name: str) -> dict[str, dict[str, Any]]:
    """Preset name -> {"description", "config"} of a pipeline (``default`` always included)."""
    return config_class(name).preset_table()


def validate_config(name: str, config: dict[str, Any] | None, preset: str | None = None) -> dict[str, Any]:
    """Validated config of ``preset`` (default: ``default``) with ``config`` on top, defaults filled in;
    raises ConfigError (key ``preset`` for an unknown preset) / UnknownPipeline."""
    return config_class(name).from_preset(preset, config).to_dict()


def create(name: str, config: dict[str, Any] | None = None, preset: str | None = None) -> "Pipeline":
    return get(name)(config_class(name).from_preset(preset, config))


def load(path: str | Path) -> "Pipeline":
    """Load any artifact, dispatching on the pipeline name stored inside."""
    import torch

    artifact = torch.load(str(path), map_location="cpu", weights_only=True)
    return get(artifact.get("pipeline", "?")).from_artifact(artifact)


def load_bytes(data: bytes) -> "Pipeline":
    import io

    import torch

    artifact = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    return get(artifact.get("pipeline", "?")).from_artifact(artifact)
