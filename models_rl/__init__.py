"""Pure ML for the RLHF loop: base model, sampling, gold labelers, pair acquisition, reward models, policy
optimisation. Plain data and paths in, metrics dicts and paths out; no Django import anywhere in this package.

This module only holds the small helper every entry module uses to turn its @dataclass config into an
argparse command line (`python -m models_rl.<module> --help`); it imports nothing heavy.
"""

import argparse
import dataclasses
import os
import types
import typing
from typing import Any, TypeVar

# Hugging Face libraries draw a bar for every weights load and save ("Loading weights 52/52"), dozens per
# round; our own tqdm bars and progress callbacks say what matters. Set before they are imported.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

ConfigT = TypeVar("ConfigT")


def _field_parser(field_type: Any) -> tuple[Any, dict[str, Any]]:
    """(argparse type, extra add_argument kwargs) for one dataclass field type; `X | None` parses as X."""
    origin = typing.get_origin(field_type)
    if origin in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(field_type) if arg is not type(None)]
        if len(members) != 1:
            raise TypeError(f"unsupported config field type {field_type!r}")
        return _field_parser(members[0])
    if origin is tuple:
        item_type = typing.get_args(field_type)[0]
        return item_type, {"nargs": "+"}
    if field_type is bool:
        return None, {"action": argparse.BooleanOptionalAction}
    if field_type in (str, int, float):
        return field_type, {}
    raise TypeError(f"unsupported config field type {field_type!r}")


def add_config_arguments(parser: argparse.ArgumentParser, config_cls: type) -> argparse.ArgumentParser:
    """Add one `--field-name` option per field of the dataclass `config_cls`.

    The help text comes from `field(metadata={"help": ...})` (no percent signs: argparse formats it), allowed
    values from `metadata={"choices": ...}`; fields without a default become required options.
    """
    hints = typing.get_type_hints(config_cls)
    group = parser.add_argument_group(config_cls.__name__)
    for field in dataclasses.fields(config_cls):
        if not field.init:
            continue
        arg_type, extra = _field_parser(hints[field.name])
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = None
        kwargs: dict[str, Any] = {"dest": field.name, "help": field.metadata.get("help", ""), **extra}
        if arg_type is not None:
            kwargs["type"] = arg_type
        if "choices" in field.metadata:
            kwargs["choices"] = field.metadata["choices"]
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            kwargs.update(required=True, default=argparse.SUPPRESS)  # SUPPRESS: no "(default: None)" in --help
        else:
            kwargs["default"] = default
        group.add_argument("--" + field.name.replace("_", "-"), **kwargs)
    return parser


def config_parser(config_cls: type, description: str | None = None) -> argparse.ArgumentParser:
    """An ArgumentParser with one option per field of the dataclass `config_cls`."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    return add_config_arguments(parser, config_cls)


def config_from_args(config_cls: type[ConfigT], args: argparse.Namespace) -> ConfigT:
    """Build `config_cls` from parsed arguments (extra attributes on `args` are ignored; lists become tuples)."""
    values = {}
    for field in dataclasses.fields(config_cls):
        if field.init and hasattr(args, field.name):
            value = getattr(args, field.name)
            values[field.name] = tuple(value) if isinstance(value, list) else value
    return config_cls(**values)
