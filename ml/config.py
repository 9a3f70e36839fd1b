"""Pipeline configuration: dataclasses validated from JSON with a JSON schema.

Every pipeline declares a ``@dataclass`` subclass of :class:`PipelineConfig`.
:func:`PipelineConfig.from_dict` refuses unknown keys and wrong types, naming
the key, and :func:`PipelineConfig.json_schema` describes the fields so the UI
can build its training form. This module imports no torch, so the web process
can list pipelines cheaply.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, ClassVar, Literal, get_args, get_origin


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type.

    ``key`` names the offending key (dotted for nested values).
    """

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


THRESHOLD_POLICIES = ("fpr", "minmax", "f1", "manual")
REGION_POLICIES = ("f1", "fpr", "image")

PRESET_NAMES = ("default", "paper", "fast")


@dataclasses.dataclass
class PipelineConfig:
    """Settings shared by every pipeline.

    ``field(metadata={"help": ..., "minimum": ..., "maximum": ...})`` feeds the
    JSON schema and the range checks.
    """

    image_size: int = dataclasses.field(
        default=256, metadata={"help": "Working resolution (square, pixels).", "minimum": 32, "maximum": 2048}
    )
    batch_size: int = dataclasses.field(default=8, metadata={"help": "Images per batch.", "minimum": 1, "maximum": 512})
    seed: int = dataclasses.field(default=0, metadata={"help": "Random seed for reproducible training."})
    device: Literal["auto", "cpu", "cuda"] = dataclasses.field(
        default="auto", metadata={"help": "Where to run: auto picks CUDA when available."}
    )
    threshold_policy: Literal["fpr", "minmax", "f1", "manual"] = dataclasses.field(
        default="fpr",
        metadata={
            "help": "How the image threshold (which images are flagged) is calibrated: accepted false-positive "
            "rate on normal images, max of normal scores, F1-optimal on labelled validation data, or manual."
        },
    )
    threshold_fpr: float = dataclasses.field(
        default=0.05, metadata={"help": "Accepted false-positive rate on normal images (policy fpr).", "minimum": 0.0, "maximum": 1.0}
    )
    manual_threshold: float | None = dataclasses.field(
        default=None, metadata={"help": "Threshold on the normalised score (policy manual)."}
    )
    # The region threshold decides which pixels are outlined; the threshold above decides
    # which images are flagged. Both are calibrated on the validation images (ml.thresholds).
    region_policy: Literal["f1", "fpr", "image"] = dataclasses.field(
        default="f1",
        metadata={
            "help": "How the region threshold (which pixels are outlined) is calibrated: F1-optimal on the "
            "annotated pixels of validation images (falls back to fpr without any), an accepted pixel "
            "false-positive rate on normal images (the DFR paper's rule), or the image threshold."
        },
    )
    region_fpr: float = dataclasses.field(
        default=0.001,
        metadata={"help": "Accepted share of normal pixels inside the region (region policy fpr).", "minimum": 0.0, "maximum": 1.0},
    )

    # Subclasses may narrow what a field accepts; nothing else is global.
    schema_title: ClassVar[str] = "Pipeline configuration"
    # Named starting points (DESIGN.md section 4): preset name -> {"description", "config"}.
    # ``default`` is the dataclass defaults themselves (the best configuration measured
    # on validation splits); ``paper`` the seed's published settings; ``fast`` a quick
    # look on 2 CPU cores. Subclasses fill in ``paper`` and ``fast``.
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    # Keys that older artifacts may carry and that loading drops (renamed or retired fields).
    retired_keys: ClassVar[tuple[str, ...]] = ()
    # Values for fields that older artifacts lack, where the default would change how such a model
    # behaves (a field added later whose default departs from what the model was trained with).
    introduced_values: ClassVar[dict[str, Any]] = {}

    @classmethod
    def preset_table(cls) -> dict[str, dict[str, Any]]:
        """Every preset with its description and overrides; ``default`` always exists (no overrides)."""
        table = {"default": {"description": "The best configuration measured on validation data.", "config": {}}}
        table.update({name: {"description": p.get("description", ""), "config": dict(p.get("config", {}))} for name, p in cls.presets.items()})
        return table

    @classmethod
    def from_preset(cls, preset: str | None, overrides: dict[str, Any] | None = None) -> "PipelineConfig":
        """The config of ``preset`` (None: ``default``) with ``overrides`` on top; unknown presets name the known ones."""
        table = cls.preset_table()
        name = preset or "default"
        if name not in table:
            raise ConfigError("preset", f"unknown preset {name!r}; known presets are {', '.join(table)}")
        if overrides is not None and not isinstance(overrides, dict):
            raise ConfigError("config", f"expected an object, got {type(overrides).__name__}")
        return cls.from_dict({**table[name]["config"], **(overrides or {})})

    @classmethod
    def from_artifact_dict(cls, data: dict[str, Any]) -> "PipelineConfig":
        """Like :meth:`from_dict` for a stored config: keys an older version wrote and this one retired are
        dropped, and fields it did not write yet take ``introduced_values`` (else their defaults)."""
        stored = {k: v for k, v in (data or {}).items() if k not in cls.retired_keys}
        return cls.from_dict({**cls.introduced_values, **stored})

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "PipelineConfig":
        """Build a config from JSON-like data, filling defaults.

        Raises :class:`ConfigError` naming the first unknown key, wrong type
        or out-of-range value.
        """
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise ConfigError("config", f"expected an object, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(unknown[0], f"unknown key; known keys are {', '.join(sorted(fields))}")
        hints = typing.get_type_hints(cls)
        values = {}
        for name, value in data.items():
            values[name] = _coerce(name, value, hints[name], fields[name].metadata)
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        """Cross-field checks; subclasses extend and raise ConfigError."""
        if self.threshold_policy == "manual" and self.manual_threshold is None:
            raise ConfigError("manual_threshold", "required when threshold_policy is 'manual'")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        hints = typing.get_type_hints(cls)
        properties = {}
        for f in dataclasses.fields(cls):
            prop = _schema_for(hints[f.name])
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            prop["default"] = list(default) if isinstance(default, tuple) else default
            if "help" in f.metadata:
                prop["description"] = f.metadata["help"]
            for bound in ("minimum", "maximum"):
                if bound in f.metadata:
                    prop[bound] = f.metadata[bound]
            properties[f.name] = prop
        return {
            "title": cls.schema_title,
            "type": "object",
            "additionalProperties": False,
            "properties": properties,
            "presets": cls.preset_table(),
        }


def _schema_for(tp: Any) -> dict[str, Any]:
    origin = get_origin(tp)
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in get_args(tp) if a is not type(None)]
        inner = _schema_for(args[0])
        inner = dict(inner)
        t = inner.get("type")
        if t is not None:
            inner["type"] = [t, "null"]
        else:
            inner = {"anyOf": [inner, {"type": "null"}]}
        return inner
    if origin in (list, tuple):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        return {"type": "array", "items": _schema_for(args[0]) if args else {}}
    return {bool: {"type": "boolean"}, int: {"type": "integer"}, float: {"type": "number"}, str: {"type": "string"}}.get(
        tp, {}
    )


def _coerce(key: str, value: Any, tp: Any, metadata: Any) -> Any:
    origin = get_origin(tp)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(key, f"must be one of {', '.join(map(repr, choices))}, got {value!r}")
        return value
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(key, value, args[0], metadata)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, f"expected a list, got {type(value).__name__}")
        args = [a for a in get_args(tp) if a is not Ellipsis]
        items = [_coerce(f"{key}[{i}]", v, args[0], {}) if args else v for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ConfigError(key, f"expected an integer, got {value!r}")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"expected a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(key, f"expected a finite number, got {value!r}")
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {value!r}")
        return value
    if "minimum" in metadata and value < metadata["minimum"]:
        raise ConfigError(key, f"must be >= {metadata['minimum']}, got {value}")
    if "maximum" in metadata and value > metadata["maximum"]:
        raise ConfigError(key, f"must be <= {metadata['maximum']}, got {value}")
    return value


@dataclasses.dataclass
class TrainingConfig(PipelineConfig):
    """The settings of the one training loop (``ml.components.training``), shared by every
    pipeline that learns weights (STYLE.md "shared config blocks").

    The length of a training is a budget of optimisation steps (and optionally of
    seconds), not of epochs: the same budget means the same work whatever the size of
    the training set, and the loop reports both steps and epochs.
    """

    max_steps: int = dataclasses.field(
        default=2000, metadata={"help": "Budget of optimisation steps (one batch each).", "minimum": 1, "maximum": 1_000_000}
    )
    max_seconds: float | None = dataclasses.field(
        default=None, metadata={"help": "Optional budget of training seconds; training stops at whichever budget ends first.", "minimum": 1.0}
    )
    learning_rate: float = dataclasses.field(default=1e-3, metadata={"help": "Peak learning rate (Adam).", "minimum": 1e-7, "maximum": 1.0})
    weight_decay: float = dataclasses.field(default=0.0, metadata={"help": "Adam weight decay.", "minimum": 0.0, "maximum": 1.0})
    lr_schedule: Literal["cosine", "constant"] = dataclasses.field(
        default="cosine", metadata={"help": "Learning rate after the warm-up: cosine decay to 1% over the step budget, or constant."}
    )
    warmup_steps: int = dataclasses.field(
        default=50, metadata={"help": "Steps of linear learning-rate warm-up.", "minimum": 0, "maximum": 100_000}
    )
    grad_clip: float = dataclasses.field(
        default=1.0, metadata={"help": "Clip the gradient norm to this value (0: no clipping).", "minimum": 0.0}
    )
    val_every: int = dataclasses.field(
        default=0,
        metadata={"help": "Validate every this many steps (0: about 20 times over the budget).", "minimum": 0, "maximum": 1_000_000},
    )
    patience: int = dataclasses.field(
        default=6,
        metadata={"help": "Stop after this many validations without improvement; the best weights are restored (0: never stop early).", "minimum": 0},
    )
    val_fraction: float = dataclasses.field(
        default=0.15,
        metadata={"help": "Share of the training images held back for validation when the job gives no validation images.", "minimum": 0.0, "maximum": 0.5},
    )
    val_min_images: int = dataclasses.field(
        default=4, metadata={"help": "At least this many images are held back (nothing when too few remain to train on).", "minimum": 1}
    )
    mixed_precision: bool = dataclasses.field(
        default=True,
        metadata={
            "help": "bfloat16 (or float16) autocast for training on CUDA; CPU training stays in float32. "
            "Pipelines measured to allow it (utad) also infer in bfloat16 where the hardware computes it "
            "natively (CUDA, or a CPU with AVX512-BF16 or AMX)."
        },
    )
