"""The selecting step: pair the round's completions within each prompt, score them with the reward ensemble,
mix in gold pairs, let models_rl's acquisition choose the rest (round 0: at random, with no reward model), and
publish the chosen pairs as comparisons.

A rating campaign publishes single completions to rate instead (comparisons with no `completion_b`), as many as a
pairwise round publishes pairs: gold items whose rating the gold labeler knows, the rest chosen by the rating
ensemble's uncertainty about p(positive), a random control share among them as the rating model's held-out set."""

import itertools
import random
from dataclasses import dataclass

import numpy as np

from annotator.core.errors import InvalidInput
from annotator.models import Choice, Comparison, ComparisonPurpose, Completion, Round, TaskKind
from annotator.rounds.selectors import round_reward_model
from annotator.rounds.settings import round_settings
from annotator.rounds.step_context import StepContext


@dataclass(frozen=True)
class CandidateCompletion:
    completion_id: int
    prompt_id: int
    prompt: str
    text: str
    gold_score: float | None


def selecting_candidates(*, round_: Round) -> list[CandidateCompletion]:
    """The round's train completions (from its sampling step), to be paired within each prompt."""
    ids = round_.metrics.get("sampling", {}).get("train_completion_ids", [])
    completions = Completion.objects.filter(pk__in=ids).select_related("prompt").order_by("prompt_id", "pk")
    return [CandidateCompletion(c.pk, c.prompt_id, c.prompt.text, c.text, c.gold_score) for c in completions]


@dataclass(frozen=True)
class ItemToPublish:
    """A pair to judge, or (completion_b None) a single completion to rate."""

    completion_a: int
    completion_b: int | None
    prompt_id: int
    purpose: str
    acquisition_score: float | None
    gold_choice: str = ""  # gold items: the known answer (a choice, or a rating value)


def select_for_labeling(context: StepContext, round_: Round):
    """The step: pairs to judge, or in a rating campaign single completions to rate."""
    if round_.campaign.task_kind == TaskKind.RATING:
        return select_rating_items(context, round_)
    return select_pairs(context, round_)


def select_pairs(context: StepContext, round_: Round):
    """Pair the round's completions within each prompt, mix in gold pairs, and pick the rest by acquisition
    score (round 0: at random, with no reward model yet)."""
    from models_rl.acquisition import AcquisitionConfig, CandidatePair, select_pairs

    round_sizes = round_settings(campaign=round_.campaign)
    completions = selecting_candidates(round_=round_)
    members = _member_scores(round_, completions)
    reward_scores = _mean_and_spread(members) if round_.number > 0 else {}
    rng = random.Random(round_sizes.seed * 7919 + round_.number)
    candidates = []
    for _, group in itertools.groupby(completions, key=lambda c: c.prompt_id):
        for first, second in itertools.combinations(list(group), 2):
            candidates.append((first, second) if rng.random() < 0.5 else (second, first))

    gold_pairs = _gold_pairs(candidates, round(round_sizes.gold_share * round_sizes.pairs_per_round), round_)
    taken = {(p.completion_a, p.completion_b) for p in gold_pairs}
    pool = {(a.completion_id, b.completion_id): (a, b) for a, b in candidates if (a.completion_id, b.completion_id) not in taken}
    config = AcquisitionConfig(
        batch_size=max(round_sizes.pairs_per_round - len(gold_pairs), 0),
        strategy=round_.campaign.acquisition_strategy if round_.number > 0 else "random",
        random_share=round_sizes.random_share,
        max_per_prompt=round_sizes.max_pairs_per_prompt,
        seed=round_sizes.seed + round_.number,
    )
    selected = select_pairs(
        [CandidatePair(key=key, prompt_key=a.prompt_id, member_rewards_a=members[a.completion_id],
                       member_rewards_b=members[b.completion_id]) for key, (a, b) in pool.items()],
        config,
    )
    acquired = [
        ItemToPublish(
            completion_a=pick.key[0], completion_b=pick.key[1], prompt_id=pool[pick.key][0].prompt_id,
            # Round 0 is random throughout; later, the random control share is the reward model's held-out set.
            purpose=ComparisonPurpose.CONTROL if pick.is_control and round_.number > 0 else ComparisonPurpose.TRAIN,
            acquisition_score=float(pick.score),
        )
        for pick in selected
    ]
    pairs = _interleave(acquired, gold_pairs)
    return lambda locked: comparisons_publish(round_=locked, pairs=pairs, reward_scores=reward_scores)


def select_rating_items(context: StepContext, round_: Round):
    """Single completions to rate: gold items spread among the rest, which the campaign's acquisition strategy
    chooses from the rating ensemble's p(positive) (round 0: at random, with no rating model yet)."""
    from models_rl.acquisition import AcquisitionConfig, CandidateItem, select_items
    from models_rl.reward_ensemble import positive_probability

    round_sizes = round_settings(campaign=round_.campaign)
    completions = selecting_candidates(round_=round_)
    members = _member_scores(round_, completions)
    reward_scores = _mean_and_spread(members) if round_.number > 0 else {}
    gold_items = _gold_rating_items(completions, round(round_sizes.gold_share * round_sizes.pairs_per_round), round_)
    taken = {item.completion_a for item in gold_items}
    pool = {c.completion_id: c for c in completions if c.completion_id not in taken}
    config = AcquisitionConfig(
        batch_size=max(round_sizes.pairs_per_round - len(gold_items), 0),
        strategy=round_.campaign.acquisition_strategy if round_.number > 0 else "random",
        random_share=round_sizes.random_share,
        max_per_prompt=round_sizes.max_pairs_per_prompt,
        seed=round_sizes.seed + round_.number,
    )
    selected = select_items(
        [CandidateItem(key=key, prompt_key=c.prompt_id,
                       member_probabilities=positive_probability(members[key]).tolist()) for key, c in pool.items()],
        config,
    )
    acquired = [
        ItemToPublish(
            completion_a=pick.key, completion_b=None, prompt_id=pool[pick.key].prompt_id,
            # As for pairs: round 0 is random throughout; later, the random control share is the held-out set.
            purpose=ComparisonPurpose.CONTROL if pick.is_control and round_.number > 0 else ComparisonPurpose.TRAIN,
            acquisition_score=float(pick.score),
        )
        for pick in selected
    ]
    items = _interleave(acquired, gold_items)
    return lambda locked: comparisons_publish(round_=locked, pairs=items, reward_scores=reward_scores)


def _gold_rating_items(completions, wanted: int, round_: Round) -> list[ItemToPublish]:
    """Completions whose rating the gold labeler knows best: its score furthest from the rating thresholds that
    decide it (models_rl.gold), at most one per prompt; the gold rating is the noiseless gold labeler's."""
    if wanted <= 0 or not round_.campaign.gold_labeler:
        return []
    from models_rl.gold import gold_rating_thresholds, rating_from_score

    thresholds = gold_rating_thresholds(round_.campaign.gold_labeler)
    scored = [(min(abs(c.gold_score - t) for t in thresholds), c) for c in completions if c.gold_score is not None]
    scored.sort(key=lambda item: (-item[0], item[1].completion_id))
    items, prompts = [], set()
    for _, completion in scored:
        if completion.prompt_id in prompts:
            continue
        prompts.add(completion.prompt_id)
        items.append(ItemToPublish(
            completion_a=completion.completion_id, completion_b=None, prompt_id=completion.prompt_id,
            purpose=ComparisonPurpose.GOLD, acquisition_score=None,
            gold_choice=rating_from_score(completion.gold_score, thresholds),
        ))
        if len(items) == wanted:
            break
    return items


def _member_scores(round_: Round, completions) -> dict[int, list[float]]:
    """Each completion's score from every ensemble member (round 0 has no reward model: one zero each). A
    pairwise model's score is its reward; a rating model's is the logit of p(positive)."""
    if round_.number == 0 or not completions:
        return {c.completion_id: [0.0] for c in completions}
    from models_rl.reward_model import RewardEnsemble

    reward_model = round_reward_model(round_=round_)
    if reward_model is None:
        raise InvalidInput(f"Round {round_.number} has no reward model to score its completions with.")
    scores = RewardEnsemble.load(reward_model.path).member_scores([c.prompt for c in completions], [c.text for c in completions])
    return {c.completion_id: [float(x) for x in scores[:, i]] for i, c in enumerate(completions)}


def _mean_and_spread(members: dict[int, list[float]]) -> dict[int, tuple[float, float]]:
    """Each completion's mean score over the ensemble's members, and their standard deviation."""
    return {key: (float(np.mean(scores)), float(np.std(scores))) for key, scores in members.items()}


def gold_choice_for(score_a: float, score_b: float) -> str:
    return Choice.A if score_a > score_b else Choice.B


def _gold_pairs(candidates, wanted: int, round_: Round) -> list[ItemToPublish]:
    """Pairs whose answer the gold labeler knows best (largest gold score gap), at most one per prompt."""
    if wanted <= 0 or not round_.campaign.gold_labeler:
        return []
    scored = [(abs(a.gold_score - b.gold_score), a, b) for a, b in candidates
              if a.gold_score is not None and b.gold_score is not None and a.gold_score != b.gold_score]
    scored.sort(key=lambda item: (-item[0], item[1].completion_id, item[2].completion_id))
    pairs, prompts = [], set()
    for _, a, b in scored:
        if a.prompt_id in prompts:
            continue
        prompts.add(a.prompt_id)
        pairs.append(ItemToPublish(
            completion_a=a.completion_id, completion_b=b.completion_id, prompt_id=a.prompt_id,
            purpose=ComparisonPurpose.GOLD, acquisition_score=None,
            gold_choice=gold_choice_for(a.gold_score, b.gold_score),
        ))
        if len(pairs) == wanted:
            break
    return pairs


def _interleave(acquired: list, gold: list) -> list:
    """Gold pairs spread evenly through the acquired ones, so labelers meet them all along."""
    if not gold:
        return acquired
    every = max(len(acquired) // (len(gold) + 1), 1)
    out, gold_left = [], list(gold)
    for index, pair in enumerate(acquired, start=1):
        out.append(pair)
        if index % every == 0 and gold_left:
            out.append(gold_left.pop(0))
    return out + gold_left


def comparisons_publish(
    *, round_: Round, pairs: list[ItemToPublish], reward_scores: dict[int, tuple[float, float]]
) -> dict:
    """Publish the round's pairs (or single completions to rate) for labeling, in the given order: earlier ones
    are served first; and store the reward model's mean score and spread on the scored completions."""
    for completion_id, (mean, spread) in reward_scores.items():
        Completion.objects.filter(pk=completion_id).update(reward_score=mean, reward_uncertainty=spread)
    overlap = round_.campaign.overlap
    Comparison.objects.bulk_create(
        Comparison(
            campaign=round_.campaign, round=round_, prompt_id=pair.prompt_id,
            completion_a_id=pair.completion_a, completion_b_id=pair.completion_b, purpose=pair.purpose,
            acquisition_score=pair.acquisition_score, priority=float(len(pairs) - position),
            judgements_wanted=overlap, gold_choice=pair.gold_choice,
        )
        for position, pair in enumerate(pairs)
    )
    counts = {purpose: sum(p.purpose == purpose for p in pairs) for purpose in ComparisonPurpose.values}
    noun = "items" if round_.campaign.task_kind == TaskKind.RATING else "pairs"
    return {f"{noun}_published": len(pairs), **{f"{noun}/{k}": v for k, v in counts.items()},
            "judgements_wanted": len(pairs) * overlap}
