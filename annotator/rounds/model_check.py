"""Checks of what a campaign names for the round loop to load, made when the campaign is set up rather than first
when a round runs: its base policy (a Hugging Face causal-LM directory), its gold labeler ('vader' or a reward-model
directory), and its overrides of the models_rl configs (`Campaign.settings`' base_model, reward_model, policy and
sampling sections).

Each check raises InvalidInput with a message saying what is wrong and what would do. transformers and models_rl
load inside the functions: the web process pays for them only when a campaign names a model or an override.
Directories are read on this machine: the round loop's workers are expected to see the same paths (a shared
artifact directory, as DESIGN.md says).
"""

import dataclasses
import os
import types
import typing
from pathlib import Path

from annotator.core.errors import InvalidInput

# Files that hold a model's weights in a Hugging Face directory (one file, or shards with an index).
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "*.safetensors.index.json", "pytorch_model.bin.index.json")
TOKENIZER_PROBE = "Shall I compare thee to a summer's day?"
REWARD_ENSEMBLE_FILE = "ensemble.json"  # models_rl.reward_ensemble.ENSEMBLE_FILE, without loading torch for it
# Values each round gives the models_rl configs itself (the `given` of annotator.rounds' steps): an override of one
# would clash with what the step passes, so it is refused with what to set instead.
ROUND_SET_KEYS = {
    "seed": "each round derives it from the campaign's seed (set 'seed')",
    "ensemble_size": "each round takes it from 'reward_ensemble_size'",
    "output_dir": "each round writes under the artifact directory",
    "base_model_path": "it is the campaign's base_model_path",
    "policy_path": "each round starts from the last round's policy",
    "reference_path": "KL is always measured from the campaign's base policy",
    "reward_model_path": "each round uses the reward model it trained",
}


def _directory(path: str, *, what: str) -> Path:
    """The directory `path`, or InvalidInput saying why it is not a readable one."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise InvalidInput(f"{what} {path!r}: no such directory on this server.")
    if not folder.is_dir():
        raise InvalidInput(f"{what} {path!r} is a file, not a directory.")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise InvalidInput(f"{what} {path!r} cannot be read (permission denied).")
    return folder


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _config(folder: Path, *, what: str, path: str):
    """The directory's transformers config, or InvalidInput: no config.json, or one transformers cannot read."""
    if not (folder / "config.json").is_file():
        raise InvalidInput(f"{what} {path!r} holds no config.json, so it is no Hugging Face model directory "
                           "(save one with model.save_pretrained(path)).")
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InvalidInput(f"{what} {path!r}: its config.json cannot be read ({_first_line(error)}).") from None


def _weights_present(folder: Path, *, what: str, path: str) -> None:
    if not any(any(folder.glob(pattern)) for pattern in WEIGHT_PATTERNS):
        raise InvalidInput(f"{what} {path!r} holds no weights (model.safetensors or pytorch_model.bin).")


def _tokenizer(folder: Path, config, *, what: str, path: str) -> None:
    """A tokenizer that loads from the directory and writes a probe text in ids the model has. (transformers makes
    an empty tokenizer for a directory without tokenizer files rather than failing, hence the probe.)"""
    from transformers import AutoTokenizer

    advice = "save the model's tokenizer there with tokenizer.save_pretrained(path)"
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        ids = tokenizer(TOKENIZER_PROBE)["input_ids"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise InvalidInput(f"{what} {path!r} has no tokenizer that loads ({_first_line(error)}); {advice}.") from None
    if not ids:
        raise InvalidInput(f"{what} {path!r} has no tokenizer (no tokenizer.json or vocabulary files); {advice}.")
    vocab_size = getattr(config, "vocab_size", None)
    if vocab_size and max(ids) >= vocab_size:
        raise InvalidInput(f"{what} {path!r}: its tokenizer writes ids up to {max(ids)}, but the model has only "
                           f"{vocab_size} embeddings; is it the model's own tokenizer?")


def base_model_check(path: str) -> None:
    """A base policy: empty (the embedded Shakespeare model), or a directory with a config transformers reads as a
    causal language model, weights, and a tokenizer. Loads the config and the tokenizer, local files only."""
    if not path:
        return
    what = "Base model"
    folder = _directory(path, what=what)
    config = _config(folder, what=what, path=path)
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    causal_classes = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    architectures = list(getattr(config, "architectures", None) or [])
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or (
        architectures and not causal_classes.intersection(architectures)
    ):
        kind = ", ".join(architectures) or f"a {config.model_type!r} model"
        raise InvalidInput(f"{what} {path!r} is {kind}, not a causal language model (one that AutoModelForCausalLM "
                           "loads, such as GPT2LMHeadModel).")
    _weights_present(folder, what=what, path=path)
    _tokenizer(folder, config, what=what, path=path)


def gold_labeler_check(value: str) -> None:
    """A gold labeler: empty (none), 'vader', or the directory of a reward model as models_rl.gold.make_gold loads
    it: a sequence classifier with one output (the reward) or two (negative / positive), and its tokenizer."""
    if value in ("", "vader"):
        return
    what = "Gold labeler"
    if not Path(value).expanduser().exists():
        raise InvalidInput(f"{what} {value!r}: neither 'vader' nor a directory on this server; leave it empty for "
                           "no gold labeler, or name a reward model's directory.")
    folder = _directory(value, what=what)
    if (folder / REWARD_ENSEMBLE_FILE).is_file() and not (folder / "config.json").is_file():
        raise InvalidInput(f"{what} {value!r} is a reward-model ensemble: name one member's folder, e.g. "
                           f"{str(folder / 'member_0')!r}.")
    config = _config(folder, what=what, path=value)
    architectures = list(getattr(config, "architectures", None) or [])
    if not any(name.endswith("ForSequenceClassification") for name in architectures):
        kind = ", ".join(architectures) or f"a {config.model_type!r} model"
        raise InvalidInput(f"{what} {value!r} is {kind}, not a reward model (a sequence classifier, such as "
                           "models_rl.reward_model writes in each member_<k> folder).")
    if config.num_labels > 2:
        raise InvalidInput(f"{what} {value!r} has {config.num_labels} outputs; a gold reward model has one (the "
                           "reward) or two (negative, positive).")
    _weights_present(folder, what=what, path=value)
    _tokenizer(folder, config, what=what, path=value)


def _config_class(section: str, optimizer: str):
    """The models_rl config a section of `Campaign.settings` overrides (the policy's depends on the optimiser)."""
    if section == "base_model":
        from models_rl.base_model import BaseModelConfig

        return BaseModelConfig
    if section == "reward_model":
        from models_rl.reward_model import RewardModelConfig

        return RewardModelConfig
    if section == "sampling":
        from models_rl.sampling import SamplingConfig

        return SamplingConfig
    if section == "policy":
        from models_rl.best_of_n import BestOfNConfig
        from models_rl.dpo import DPOConfig
        from models_rl.rloo import RLConfig

        return {"rl": RLConfig, "dpo": DPOConfig, "best_of_n": BestOfNConfig}[optimizer]
    raise InvalidInput(f"Unknown settings section {section!r}.")


def _type_name(hint) -> str:
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}
    if hint in names:
        return names[hint]
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(repr(choice) for choice in typing.get_args(hint))
    return str(hint).replace("typing.", "")


def _fits(hint, value) -> bool:
    """Whether a YAML/JSON value can stand for a field of this type (types it cannot judge pass)."""
    origin = typing.get_origin(hint)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is type(None):
        return value is None
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(arm, value) for arm in typing.get_args(hint))
    if origin in (tuple, list):
        args = [arg for arg in typing.get_args(hint) if arg is not Ellipsis]
        return isinstance(value, (list, tuple)) and all(_fits(args[0], item) for item in value) if args else True
    return True


def ml_section_check(section: str, values: dict, *, optimizer: str) -> None:
    """An override of a models_rl config (`Campaign.settings[section]`): a mapping of that config's field names to
    values of the field's type, none of them one the round sets itself. The policy's config is the optimiser's."""
    if not isinstance(values, dict):
        raise InvalidInput(f"{section} must be a mapping of setting names to values.")
    if not values:
        return
    config_cls = _config_class(section, optimizer)
    hints = typing.get_type_hints(config_cls)
    names = {field.name for field in dataclasses.fields(config_cls)}
    problems = []
    unknown = sorted(set(values) - names)
    if unknown:
        problems.append(f"{config_cls.__name__} has no setting {', '.join(map(str, unknown))}; it has "
                        f"{', '.join(sorted(names - set(ROUND_SET_KEYS)))}.")
    for key in sorted(set(values) & names):
        if key in ROUND_SET_KEYS:
            problems.append(f"{section}.{key} cannot be set here: {ROUND_SET_KEYS[key]}.")
        elif not _fits(hints.get(key), values[key]):
            problems.append(f"{section}.{key} must be {_type_name(hints.get(key))}; got {values[key]!r}.")
    if problems:
        raise InvalidInput(" ".join(problems))
