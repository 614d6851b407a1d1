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
from annotator.rounds.states import TASK_STEPS, round_step_needs_gpu, round_steps_of
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
    judgements = pairs * campaign.overlap
    labeling_cost = item_price(campaign=campaign, profile=None).total * judgements
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
