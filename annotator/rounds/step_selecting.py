"""The selecting step: pair the round's completions within each prompt, score them with the reward ensemble,
mix in gold pairs, let models_rl's acquisition choose the rest (round 0: at random, with no reward model), and
publish the chosen pairs as comparisons."""

import itertools
import random
from dataclasses import dataclass

import numpy as np

from annotator.core.errors import InvalidInput
from annotator.models import Choice, Comparison, ComparisonPurpose, Completion, Round
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
class PairToPublish:
    completion_a: int
    completion_b: int
    prompt_id: int
    purpose: str
    acquisition_score: float | None
    gold_choice: str = ""


def select_pairs(context: StepContext, round_: Round):
    """Pair the round's completions within each prompt, mix in gold pairs, and pick the rest by acquisition
    score (round 0: at random, with no reward model yet)."""
    from models_rl.acquisition import AcquisitionConfig, CandidatePair, select_pairs

    round_sizes = round_settings(campaign=round_.campaign)
    completions = selecting_candidates(round_=round_)
    members = _member_rewards(round_, completions)
    reward_scores = {}
    if round_.number > 0:
        reward_scores = {c.completion_id: (float(np.mean(members[c.completion_id])), float(np.std(members[c.completion_id])))
                         for c in completions}
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
        PairToPublish(
            completion_a=pick.key[0], completion_b=pick.key[1], prompt_id=pool[pick.key][0].prompt_id,
            # Round 0 is random throughout; later, the random control share is the reward model's held-out set.
            purpose=ComparisonPurpose.CONTROL if pick.is_control and round_.number > 0 else ComparisonPurpose.TRAIN,
            acquisition_score=float(pick.score),
        )
        for pick in selected
    ]
    pairs = _interleave(acquired, gold_pairs)
    return lambda locked: comparisons_publish(round_=locked, pairs=pairs, reward_scores=reward_scores)


def _member_rewards(round_: Round, completions) -> dict[int, list[float]]:
    """Each completion's reward from every ensemble member (round 0 has no reward model: one zero each)."""
    if round_.number == 0 or not completions:
        return {c.completion_id: [0.0] for c in completions}
    from models_rl.reward_model import RewardEnsemble

    reward_model = round_reward_model(round_=round_)
    if reward_model is None:
        raise InvalidInput(f"Round {round_.number} has no reward model to score its completions with.")
    scores = RewardEnsemble.load(reward_model.path).member_scores([c.prompt for c in completions], [c.text for c in completions])
    return {c.completion_id: [float(x) for x in scores[:, i]] for i, c in enumerate(completions)}


def gold_choice_for(score_a: float, score_b: float) -> str:
    return Choice.A if score_a > score_b else Choice.B


def _gold_pairs(candidates, wanted: int, round_: Round) -> list[PairToPublish]:
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
        pairs.append(PairToPublish(
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
    *, round_: Round, pairs: list[PairToPublish], reward_scores: dict[int, tuple[float, float]]
) -> dict:
    """Publish the round's pairs for labeling (in the given order: earlier ones are served first) and store
    the reward model's mean and spread on the scored completions."""
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
    return {"pairs_published": len(pairs), **{f"pairs/{k}": v for k, v in counts.items()}, "judgements_wanted": len(pairs) * overlap}
