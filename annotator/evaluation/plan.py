"""What an evaluation run will do and cost, checked before anything is written.

A plan names the checkpoints (at least two, all of the campaign, with their files on disk), the held-out prompts
(never prompts a reward model trained on), the battles (every pair of checkpoints on every prompt), the blind
ratings (N samples of each rated checkpoint) and what they cost: answers x the campaign's price per item, plus
the sampling step's GPU estimate. A plan the budget cannot cover is refused with the figures, like
`run_round --dry-run`.
"""

import itertools
import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from django.utils import timezone

from annotator.core.errors import BudgetExhausted, InvalidInput
from annotator.core.pricing import item_price
from annotator.evaluation.selectors import base_checkpoint, checkpoint_name, default_evaluation_checkpoints
from annotator.models import Campaign, Comparison, ComparisonPurpose, PolicyCheckpoint, Prompt, PromptSplit
from annotator.rounds.selectors import BASE_LABEL, FINAL_LABEL
from annotator.selectors.money import campaign_money
from annotator.services.budget import gpu_step_estimate

SAMPLING_STEP = "evaluation_sampling"  # the GPU step's name on the ledger (estimates find earlier runs by it)
DEFAULT_PROMPTS = 16
DEFAULT_RATINGS = 20  # the curriculum's "20 samples from your original model and 20 from your final model"
MAX_PROMPTS = 1000
MAX_RATINGS = 1000
MAX_CHECKPOINTS = 20
MAX_JUDGEMENTS_WANTED = 20


@dataclass(frozen=True)
class EvaluationPlan:
    campaign: Campaign
    checkpoints: list[PolicyCheckpoint]
    rated: list[PolicyCheckpoint]
    prompt_ids: list[int]
    ratings_per_checkpoint: int
    judgements_wanted: int
    samples_per_prompt: dict[int, int]  # per checkpoint id: battles take the first, ratings the rest
    battles: int
    ratings: int
    answers: int
    labeling_cost: Decimal
    gpu_seconds: Decimal
    gpu_cost: Decimal
    device_type: str
    gpu_runs: int = 0  # earlier sampling runs the estimate is the mean of

    @property
    def pairs(self) -> int:
        return len(self.checkpoints) * (len(self.checkpoints) - 1) // 2

    @property
    def total_cost(self) -> Decimal:
        return self.labeling_cost + self.gpu_cost

    def describe(self) -> str:
        names = ", ".join(checkpoint_name(c) for c in self.checkpoints)
        rated = " and ".join(checkpoint_name(c) for c in self.rated)
        lines = [
            f"Checkpoints ({len(self.checkpoints)}): {names}",
            f"Held-out prompts: {len(self.prompt_ids)}",
            f"Battles: {self.pairs} pair{'s' * (self.pairs != 1)} x {len(self.prompt_ids)} prompts = {self.battles}",
            f"Blind ratings: {self.ratings_per_checkpoint} each of {rated}" if self.rated else "Blind ratings: none",
            f"Answers wanted: {self.answers} ({self.judgements_wanted} per item)",
            f"Labeling: {self.labeling_cost} {self.campaign.currency}; sampling: " + (
                f"{self.gpu_seconds} GPU-seconds on {self.device_type} ({self.gpu_cost} {self.campaign.currency}, the mean "
                f"of {self.gpu_runs} earlier run{'s' * (self.gpu_runs != 1)})" if self.gpu_runs else
                f"not estimated (no earlier evaluation on {self.device_type}); charged at its real GPU time"),
        ]
        return "\n".join(lines)


def _count(value, *, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}; got {value!r}.")
    return value


def _checkpoints_of(campaign: Campaign, ids, *, name: str) -> list[PolicyCheckpoint]:
    if not isinstance(ids, (list, tuple)) or any(isinstance(i, bool) or not isinstance(i, int) for i in ids):
        raise InvalidInput(f"{name} must be a list of checkpoint ids.")
    if len(set(ids)) != len(ids):
        raise InvalidInput(f"{name} names a checkpoint twice.")
    rows = {c.pk: c for c in PolicyCheckpoint.objects.filter(pk__in=ids).select_related("round", "campaign")}
    missing = [i for i in ids if i not in rows]
    if missing:
        raise InvalidInput(f"{name}: no checkpoint {', '.join(map(str, missing))}.")
    foreign = [i for i in ids if rows[i].campaign_id != campaign.pk]
    if foreign:
        raise InvalidInput(
            f"{name}: checkpoint {', '.join(map(str, foreign))} belongs to another campaign than {campaign.name!r}."
        )
    return [rows[i] for i in ids]


def _files_missing(checkpoint: PolicyCheckpoint) -> bool:
    """A trained checkpoint is a local folder; a base model may also be a Hugging Face name (checked on load)."""
    path = Path(checkpoint.path)
    return not path.exists() and (checkpoint.label != BASE_LABEL or path.is_absolute())


def evaluation_plan(
    *,
    campaign: Campaign,
    checkpoint_ids: list[int] | None = None,
    prompts: int | None = None,
    ratings_per_checkpoint: int = DEFAULT_RATINGS,
    rated_checkpoint_ids: list[int] | None = None,
    judgements_wanted: int = 1,
    device_type: str = "cpu",
    now: datetime | None = None,
) -> EvaluationPlan:
    """Check an evaluation request and say what it will do and cost; InvalidInput or BudgetExhausted otherwise.

    Defaults: the base, every round's final and the newest round's KL checkpoints; up to 16 held-out prompts;
    20 blind ratings each of the base and the newest final policy (none when `ratings_per_checkpoint` is 0).
    """
    if checkpoint_ids is None:
        checkpoints = default_evaluation_checkpoints(campaign=campaign)
    else:
        checkpoints = _checkpoints_of(campaign, checkpoint_ids, name="checkpoints")
    if len(checkpoints) < 2:
        raise InvalidInput(
            f"An evaluation compares at least two checkpoints; {campaign.name!r} "
            + ("has fewer (run a round first)." if checkpoint_ids is None else f"was given {len(checkpoints)}.")
        )
    _count(len(checkpoints), name="the number of checkpoints", low=2, high=MAX_CHECKPOINTS)
    missing = [checkpoint_name(c) for c in checkpoints if _files_missing(c)]
    if missing:
        raise InvalidInput(f"The files of checkpoint {', '.join(missing)} are missing; they cannot be sampled.")

    heldout = list(
        Prompt.objects.filter(campaign=campaign, split=PromptSplit.HELDOUT).order_by("pk").values_list("pk", flat=True)
    )
    if not heldout:
        raise InvalidInput(f"Campaign {campaign.name!r} has no held-out prompts to evaluate on.")
    wanted_prompts = min(DEFAULT_PROMPTS, len(heldout)) if prompts is None else _count(
        prompts, name="prompts", low=1, high=MAX_PROMPTS
    )
    if wanted_prompts > len(heldout):
        raise InvalidInput(f"prompts: {wanted_prompts} asked, but {campaign.name!r} has {len(heldout)} held-out prompts.")
    prompt_ids = heldout[:wanted_prompts]
    trained_on = (
        Comparison.objects.filter(prompt_id__in=prompt_ids).exclude(purpose=ComparisonPurpose.EVALUATION)
        .values_list("prompt_id", flat=True).first()
    )
    if trained_on is not None:
        raise InvalidInput(f"Held-out prompt {trained_on} has training pairs: it is not held out, so it cannot evaluate.")

    ratings_per_checkpoint = _count(ratings_per_checkpoint, name="ratings_per_checkpoint", low=0, high=MAX_RATINGS)
    if ratings_per_checkpoint == 0:
        rated = []
    elif rated_checkpoint_ids is None:
        finals = [c for c in checkpoints if c.label == FINAL_LABEL]
        base = base_checkpoint(campaign=campaign)
        first = base if base is not None and base in checkpoints else checkpoints[0]
        last = max(finals, key=lambda c: c.round.number) if finals else checkpoints[-1]
        rated = [first, last] if last != first else [first]
    else:
        rated = _checkpoints_of(campaign, rated_checkpoint_ids, name="rated_checkpoints")
        if not rated:
            raise InvalidInput("rated_checkpoints is empty: name the checkpoints to rate, or ask for 0 ratings.")
        outside = [checkpoint_name(c) for c in rated if c not in checkpoints]
        if outside:
            raise InvalidInput(f"Rated checkpoint {', '.join(outside)} is not among the evaluated checkpoints.")
    judgements_wanted = _count(judgements_wanted, name="judgements_wanted", low=1, high=MAX_JUDGEMENTS_WANTED)

    per_prompt = {c.pk: 1 for c in checkpoints}
    for c in rated:
        per_prompt[c.pk] = 1 + math.ceil(ratings_per_checkpoint / len(prompt_ids))
    battles = len(list(itertools.combinations(checkpoints, 2))) * len(prompt_ids)
    ratings = ratings_per_checkpoint * len(rated)
    answers = (battles + ratings) * judgements_wanted
    labeling_cost = item_price(campaign=campaign, profile=None).total * answers
    estimate = gpu_step_estimate(campaign=campaign, step=SAMPLING_STEP, device_type=device_type)
    plan = EvaluationPlan(
        campaign=campaign, checkpoints=checkpoints, rated=rated, prompt_ids=prompt_ids,
        ratings_per_checkpoint=ratings_per_checkpoint, judgements_wanted=judgements_wanted,
        samples_per_prompt=per_prompt, battles=battles, ratings=ratings, answers=answers,
        labeling_cost=labeling_cost, gpu_seconds=estimate.seconds, gpu_cost=estimate.cost, device_type=device_type,
        gpu_runs=estimate.runs,
    )
    if campaign.money_budget is not None:
        funds = campaign_money(campaign_id=campaign.pk, now=now or timezone.now(), price=plan.total_cost)
        if funds.exceeded:
            raise BudgetExhausted(
                f"This evaluation costs {plan.total_cost} {campaign.currency} ({answers} answers: {labeling_cost}; "
                f"sampling: {plan.gpu_cost}), but only {max(funds.left, Decimal(0))} of {campaign.money_budget} "
                f"{campaign.currency} is left. Ask for fewer prompts, checkpoints or ratings, or raise the budget.",
                cost=str(plan.total_cost), left=str(max(funds.left, Decimal(0))),
            )
    return plan
