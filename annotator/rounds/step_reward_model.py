"""The training_reward step: every judgement so far as preference pairs -> a reward-model ensemble -> its row; in
a rating campaign, every rating so far -> a rating-model ensemble (the logit of "positive" at the last token).

Its inputs (the preference export, the base policy's path) are also what the optimizing step's DPO reads.
"""

from dataclasses import dataclass, field
from pathlib import Path

from annotator.core.errors import InvalidInput
from annotator.models import Choice, ComparisonPurpose, RewardModel, Round, TaskKind
from annotator.rounds.selectors import campaign_base_checkpoint, judgements_for_training, ratings_for_training
from annotator.rounds.settings import (
    campaign_gold,
    embedded_base_model_dir,
    ml_config,
    ml_settings,
    round_settings,
    round_step_dir_fresh,
)
from annotator.rounds.step_context import StepContext


@dataclass
class PreferenceExport:
    """Judgements as models_rl preference pairs: train (purpose train/gold) and held out (the random controls)."""

    train: list = field(default_factory=list)
    heldout: list = field(default_factory=list)
    judgements: int = 0
    ties: int = 0
    both_bad_skipped: int = 0


def preference_pairs_export(*, round_: Round) -> PreferenceExport:
    """Every judgement from the rounds before this one, as `PreferencePair`s.

    "a"/"b" order the pair, a tie is kept with `tie=True` (the loss pulls the two rewards together), and
    "both bad" is skipped: it says nothing about the order, and the pairwise loss has no absolute term.
    Judgements on the random control pairs (purpose eval) are the reward model's held-out set.
    """
    from models_rl.reward_model import PreferencePair

    export = PreferenceExport()
    for judgement in judgements_for_training(campaign=round_.campaign, before_number=round_.number):
        export.judgements += 1
        comparison = judgement.assignment.comparison
        a, b = comparison.completion_a.text, comparison.completion_b.text
        if judgement.choice == Choice.BOTH_BAD:
            export.both_bad_skipped += 1
            continue
        chosen, rejected = (b, a) if judgement.choice == Choice.B else (a, b)
        tie = judgement.choice == Choice.TIE
        export.ties += tie
        pair = PreferencePair(prompt=comparison.prompt.text, chosen=chosen, rejected=rejected, tie=tie, strength=judgement.strength)
        (export.heldout if comparison.purpose == ComparisonPurpose.CONTROL else export.train).append(pair)
    return export


@dataclass
class RatingExport:
    """Ratings as models_rl rating examples: train (purpose train/gold) and held out (the random controls)."""

    train: list = field(default_factory=list)
    heldout: list = field(default_factory=list)
    ratings: int = 0


def rating_examples_export(*, round_: Round) -> RatingExport:
    """Every rating from the rounds before this one, as `RatingExample`s; the ratings of the random control items
    (purpose eval) are the rating model's held-out set."""
    from models_rl.reward_model import RatingExample

    export = RatingExport()
    for rating in ratings_for_training(campaign=round_.campaign, before_number=round_.number):
        export.ratings += 1
        item = rating.assignment.comparison
        example = RatingExample(prompt=item.prompt.text, text=item.completion_a.text, value=rating.value)
        (export.heldout if item.purpose == ComparisonPurpose.CONTROL else export.train).append(example)
    return export


def base_policy_path(*, round_: Round) -> str:
    """The base policy's path: the registered base checkpoint, else the campaign's model, else the embedded one."""
    base = campaign_base_checkpoint(campaign=round_.campaign)
    if base is not None:
        return base.path
    return round_.campaign.base_model_path or str(embedded_base_model_dir(campaign=round_.campaign))


def train_reward_model(context: StepContext, round_: Round):
    if round_.campaign.task_kind == TaskKind.RATING:
        return train_rating_model(context, round_)
    from models_rl.reward_model import train_reward_model

    export = preference_pairs_export(round_=round_)
    if not export.train:
        raise InvalidInput(
            f"Round {round_.number} has no judgements to learn from ({export.judgements} in, "
            f"{export.both_bad_skipped} of them 'both bad'). Label the earlier rounds' pairs first."
        )
    result = train_reward_model(
        export.train, _reward_model_config(context, round_), heldout=export.heldout or None,
        gold=campaign_gold(campaign=round_.campaign), progress=context.progress("reward model"),
    )
    return lambda locked: reward_model_store(round_=locked, path=result.path, metrics=result.metrics, export=export)


def train_rating_model(context: StepContext, round_: Round):
    """A rating campaign's reward model: p(positive) from the ratings so far, an ensemble like the pairwise one."""
    from models_rl.reward_model import train_rating_model

    export = rating_examples_export(round_=round_)
    if not export.train:
        raise InvalidInput(
            f"Round {round_.number} has no ratings to learn from ({export.ratings} in, {len(export.heldout)} of them "
            "on held-out control items). Rate the earlier rounds' items first."
        )
    overrides = ml_settings(campaign=round_.campaign, section="reward_model")
    if overrides.get("pooling", "last") != "last" or overrides.get("features", "hidden") != "hidden":
        raise InvalidInput(
            f"{round_.campaign.name!r} collects ratings, and a rating model reads the last token's hidden state: "
            "remove settings.reward_model.pooling and .features (or set them to 'last' and 'hidden')."
        )
    result = train_rating_model(
        export.train, _reward_model_config(context, round_), heldout=export.heldout or None,
        gold=campaign_gold(campaign=round_.campaign), progress=context.progress("rating model"),
    )
    return lambda locked: rating_model_store(round_=locked, path=result.path, metrics=result.metrics, export=export)


def _reward_model_config(context: StepContext, round_: Round):
    from models_rl.reward_model import RewardModelConfig

    round_sizes = round_settings(campaign=round_.campaign)
    return ml_config(
        RewardModelConfig,
        given={
            "base_model_path": base_policy_path(round_=round_),
            "output_dir": str(round_step_dir_fresh(round_=round_, step=context.step)),
            "ensemble_size": round_sizes.reward_ensemble_size,
            "seed": round_sizes.seed + round_.number,
        },
        campaign=round_.campaign, section="reward_model",
    )


def _float(value) -> float | None:
    return None if value is None else float(value)


def reward_model_store(*, round_: Round, path: Path, metrics: dict, export: PreferenceExport) -> dict:
    """Register the round's reward model (unique by path) and return the step's metrics."""
    _reward_model_register(round_=round_, path=path, metrics=metrics)
    return {
        **metrics,
        "data/judgements": export.judgements,
        # What the trainer used: with no control pairs to hold out it holds out a share of the train pairs.
        "data/train_pairs": metrics.get("train/examples", len(export.train)),
        "data/heldout_pairs": metrics.get("eval/pairs", len(export.heldout)),
        "data/ties": export.ties,
        "data/both_bad_skipped": export.both_bad_skipped,
    }


def rating_model_store(*, round_: Round, path: Path, metrics: dict, export: RatingExport) -> dict:
    """Register the round's rating model (unique by path) and return the step's metrics."""
    _reward_model_register(round_=round_, path=path, metrics=metrics)
    return {
        **metrics,
        "data/judgements": export.ratings,
        # As for pairs: with no control items to hold out the trainer holds out a share of the train ratings.
        "data/train_ratings": metrics.get("train/examples", len(export.train)),
        "data/heldout_ratings": metrics.get("eval/examples", len(export.heldout)),
    }


def _reward_model_register(*, round_: Round, path: Path, metrics: dict) -> None:
    RewardModel.objects.update_or_create(
        campaign=round_.campaign,
        path=str(path),
        defaults={
            "round": round_,
            "heldout_accuracy": _float(metrics.get("eval/accuracy")),
            "gold_agreement": _float(metrics.get("eval/gold_agreement")),
            "metrics": metrics,
        },
    )
