"""What a round will cost before it runs (run_round --dry-run): GPU time from earlier runs of the same steps,
labeling from the round's pairs, both against what the budgets have left. Reads only."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from annotator.core.errors import BudgetExhausted
from annotator.core.pricing import item_price
from annotator.models import Campaign, Round, RoundState
from annotator.rounds.selectors import round_latest
from annotator.rounds.settings import round_settings
from annotator.rounds.states import STEPS, TASK_STEPS, round_step_needs_gpu, round_steps_of
from annotator.selectors.money import campaign_money
from annotator.services.budget import gpu_step_check, gpu_step_estimate


@dataclass(frozen=True)
class RoundEstimate:
    round_number: int
    steps: tuple[str, ...]
    gpu_seconds: Decimal
    gpu_cost: Decimal
    pairs: int
    judgements: int
    labeling_cost: Decimal
    problems: tuple[str, ...]


def round_estimate(*, campaign: Campaign, device_type: str, final: bool = False, now: datetime | None = None) -> RoundEstimate:
    """What the campaign's next (or current) round will cost, and what the budgets say about it (`final`: the
    next round is a final one, which labels nothing).

    GPU: `gpu_step_check` for each GPU step still to run (estimates from earlier runs). Money: the round's
    pairs x overlap x the campaign's price per judgement, against what is left of the money budget after the
    GPU estimate.
    """
    now = now or timezone.now()
    round_sizes = round_settings(campaign=campaign)
    latest = round_latest(campaign=campaign)
    if latest is None or latest.state in (RoundState.DONE, RoundState.LABELING):
        number = 0 if latest is None else latest.number + 1
        probe = Round(campaign=campaign, number=number, final=final)
        steps = tuple(step for step in round_steps_of(probe) if step in TASK_STEPS)
    else:
        number = latest.number
        probe = latest
        current = latest.metrics.get("failed_step") if latest.state == RoundState.FAILED else latest.state
        order = round_steps_of(latest)
        steps = tuple(step for step in order[order.index(current):] if step in TASK_STEPS)
    problems: list[str] = []
    gpu_seconds, gpu_cost = Decimal(0), Decimal(0)
    for step in steps:
        if not round_step_needs_gpu(round_=probe, step=step):
            continue
        estimate = gpu_step_estimate(campaign=campaign, step=step, device_type=device_type)
        gpu_seconds += estimate.seconds
        gpu_cost += estimate.cost
        try:
            gpu_step_check(campaign=campaign, step=step, device_type=device_type)
        except BudgetExhausted as exc:
            problems.append(exc.message)
    pairs = round_sizes.pairs_per_round if RoundState.SELECTING in steps else 0
    judgements, labeling_cost = round_labeling_cost(campaign=campaign, pairs=pairs)
    if campaign.money_budget is not None:
        funds = campaign_money(campaign_id=campaign.pk, now=now, price=labeling_cost + gpu_cost)
        left = funds.left
        if funds.exceeded:
            problems.append(
                f"Labeling {pairs} pairs x overlap {campaign.overlap} = {judgements} judgements costs {labeling_cost} "
                f"{campaign.currency} (plus {gpu_cost} of GPU time), but only {max(left, Decimal(0))} of "
                f"{campaign.money_budget} {campaign.currency} is left."
            )
    return RoundEstimate(
        round_number=number, steps=steps, gpu_seconds=gpu_seconds, gpu_cost=gpu_cost, pairs=pairs,
        judgements=judgements, labeling_cost=labeling_cost, problems=tuple(problems),
    )


# The device a set-up preview prices GPU time on: no GPU price is set for it, so the campaign's default GPU-hour
# price applies, and no run was charged on it, so earlier runs on any device give the seconds.
ANY_DEVICE = "any device"


def round_labeling_cost(*, campaign: Campaign, pairs: int) -> tuple[int, Decimal]:
    """(judgements, their cost) of labeling `pairs` pairs: pairs x overlap at the campaign's price of one item."""
    judgements = pairs * campaign.overlap
    return judgements, item_price(campaign=campaign, profile=None).total * judgements


def round_estimate_of_spec(*, campaign: Campaign) -> RoundEstimate:
    """What one full round (every step, labeling included) of a campaign being set up will cost: its pairs x
    overlap at its price, and the GPU time of earlier charged runs of the same steps on any device, at its default
    GPU-hour price. `campaign` may be unsaved, or hold edits not yet saved (a new campaign has no earlier runs, so
    its GPU time is unknown and counted as zero). Compares with no budget; `problems` is empty. Reads only."""
    round_sizes = round_settings(campaign=campaign)
    probe = Round(campaign=campaign, number=1)
    gpu_seconds, gpu_cost = Decimal(0), Decimal(0)
    if campaign.pk is not None:
        for step in STEPS:
            if round_step_needs_gpu(round_=probe, step=step):
                estimate = gpu_step_estimate(campaign=campaign, step=step, device_type=ANY_DEVICE)
                gpu_seconds += estimate.seconds
                gpu_cost += estimate.cost
    judgements, labeling_cost = round_labeling_cost(campaign=campaign, pairs=round_sizes.pairs_per_round)
    return RoundEstimate(
        round_number=probe.number, steps=STEPS, gpu_seconds=gpu_seconds, gpu_cost=gpu_cost,
        pairs=round_sizes.pairs_per_round, judgements=judgements, labeling_cost=labeling_cost, problems=(),
    )
