"""The living budget: staff entries, reversals, and GPU time (estimate, check before a step, charge after).

The ledger is append-only: a correction is a new entry pointing at the one it reverses. New charges and
staff entries hold the campaign row lock (`FOR UPDATE`), the lock claims take (see annotator.services.ledger).

GPU charges carry `unit="gpu_seconds"`, the seconds as `quantity`, the device type, the worker's task
reference (one charge per campaign and task_ref, enforced by a unique constraint) and the step name in
`reason` ("GPU step: <step>"), which is how estimates find earlier runs of the same step.
"""

import logging
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from annotator.models import Campaign, GpuPrice, LedgerCategory, LedgerEntry, Round
from annotator.selectors.budget import (
    GPU_SECONDS_UNIT,
    SECONDS_PER_HOUR,
    gpu_seconds_used,
    gpu_step_history,
    step_reason,
)
from annotator.core.errors import AccessDenied, BudgetExhausted, InvalidInput, NotFound
from annotator.selectors.money import campaign_money
from annotator.services.ledger import campaign_lock, campaign_lock_shared
from annotator.core.pricing import money

logger = logging.getLogger(__name__)

# LedgerEntry.amount is DECIMAL(14, 4): ten digits before the point.
MAX_AMOUNT = Decimal("9999999999")
MAX_GPU_SECONDS = Decimal(366 * 24 * 3600)  # one task reporting more than a GPU-year is a bug, not a bill
MAX_REASON_CHARS = 2000


def _require_staff(user: AbstractBaseUser | None) -> None:
    if user is None or not user.is_active or not user.is_staff:
        raise AccessDenied("Only staff may record or reverse ledger entries.")


def _decimal(value, *, name: str) -> Decimal:
    """A finite Decimal from a Decimal, int, float or numeric string; floats go through their shortest repr."""
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be a number; got {value!r}.")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{name} must be a finite number; got {value!r}.")
        value = repr(value)
    try:
        number = Decimal(value) if isinstance(value, (Decimal, int, str)) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise InvalidInput(f"{name} must be a number; got {value!r}.")
    return number


def _reason(reason) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("Say why: a reason is required for every manual entry and reversal.")
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidInput(f"The reason is longer than {MAX_REASON_CHARS} characters.")
    return reason.strip()


def _round_of(campaign: Campaign, round_: Round | None) -> Round | None:
    if round_ is not None and round_.campaign_id != campaign.pk:
        raise InvalidInput(f"Round {round_.number} belongs to another campaign than {campaign.name!r}.")
    return round_


@transaction.atomic
def ledger_entry_record(
    *,
    campaign: Campaign,
    category: str,
    amount: Decimal | int | str,
    reason: str,
    recorded_by: AbstractBaseUser,
    quantity: Decimal | int | str = Decimal("0"),
    unit: str = "",
    labeler: AbstractBaseUser | None = None,
    round: Round | None = None,  # noqa: A002 - the name of the model field
) -> LedgerEntry:
    """Record a staff entry: a contractor invoice, a fee, a bonus, a credit (negative amount), a correction.

    It is recorded even when it takes the campaign past its money cap (an invoice is owed either way); the
    cap then refuses new work until the budget is raised. Holds the campaign row lock (`FOR UPDATE`).
    """
    _require_staff(recorded_by)
    if category not in LedgerCategory.values:
        raise InvalidInput(f"category must be one of {', '.join(LedgerCategory.values)}; got {category!r}.")
    amount = _decimal(amount, name="amount")
    if amount == 0:
        raise InvalidInput("amount must not be zero: an entry of nothing records nothing.")
    if amount != money(amount) or abs(amount) > MAX_AMOUNT:
        raise InvalidInput(f"amount must have at most 4 decimal places and at most {MAX_AMOUNT} in size.")
    quantity = _decimal(quantity, name="quantity")
    if quantity != quantity.quantize(Decimal("0.0001")) or abs(quantity) >= Decimal("1e12"):
        raise InvalidInput("quantity must have at most 4 decimal places and fewer than 12 digits before them.")
    if not isinstance(unit, str) or len(unit) > LedgerEntry._meta.get_field("unit").max_length:
        raise InvalidInput("unit must be a short word such as 'invoice' or 'hours'.")
    reason = _reason(reason)
    campaign = campaign_lock(campaign_id=campaign.pk)
    return LedgerEntry.objects.create(
        campaign=campaign,
        category=category,
        amount=amount,
        quantity=quantity,
        unit=unit.strip(),
        labeler=labeler,
        round=_round_of(campaign, round),
        recorded_by=recorded_by,
        reason=reason,
    )


@transaction.atomic
def ledger_entry_reverse(*, entry_id: int, recorded_by: AbstractBaseUser, reason: str) -> LedgerEntry:
    """Cancel an entry with a new one of the opposite amount (and quantity and time) that points at it.

    An entry is reversed at most once (the `reverses` one-to-one enforces it too), and a reversal is not
    itself reversed: record a new entry instead. Holds the entry's row lock (`FOR UPDATE`), which orders
    concurrent reversals of it; not the campaign lock, since a labeler's submit holds its assignment's
    row and then waits for the campaign, and the reversal of a labeling charge needs that assignment row.
    """
    _require_staff(recorded_by)
    reason = _reason(reason)
    try:
        entry = LedgerEntry.objects.select_for_update().get(pk=entry_id)
    except (LedgerEntry.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"No ledger entry {entry_id}.") from None
    if entry.reverses_id is not None:
        raise InvalidInput(
            f"Entry {entry.pk} is itself the reversal of entry {entry.reverses_id}; record a new entry instead."
        )
    already = LedgerEntry.objects.filter(reverses=entry).values_list("pk", flat=True).first()
    if already is not None:
        raise InvalidInput(f"Entry {entry.pk} was already reversed by entry {already}; it cannot be reversed twice.")
    campaign_lock_shared(campaign_id=entry.campaign_id)
    return LedgerEntry.objects.create(
        campaign_id=entry.campaign_id,
        category=entry.category,
        amount=-entry.amount,
        quantity=-entry.quantity,
        unit=entry.unit,
        labeler_id=entry.labeler_id,
        assignment_id=entry.assignment_id,
        round_id=entry.round_id,
        task_ref=entry.task_ref,
        device_type=entry.device_type,
        seconds_on_page=None if entry.seconds_on_page is None else -entry.seconds_on_page,
        reverses=entry,
        recorded_by=recorded_by,
        reason=reason,
    )


@dataclass(frozen=True)
class GpuEstimate:
    seconds: Decimal
    cost: Decimal  # in the campaign's currency, at the device type's price
    runs: int = 0  # earlier runs the seconds are the mean of; 0 when the estimate is the caller's (or none)

    @property
    def hours(self) -> Decimal:
        return self.seconds / SECONDS_PER_HOUR


def gpu_hour_price(*, campaign: Campaign, device_type: str) -> Decimal:
    """The campaign's price of one GPU-hour on a device type, or its default price."""
    price = (
        GpuPrice.objects.filter(campaign=campaign, device_type=device_type)
        .values_list("price_per_hour", flat=True)
        .first()
    )
    return campaign.default_gpu_hour_price if price is None else price


def gpu_cost(*, campaign: Campaign, device_type: str, seconds: Decimal) -> Decimal:
    return money(seconds * gpu_hour_price(campaign=campaign, device_type=device_type) / SECONDS_PER_HOUR)


def _step_and_device(step, device_type) -> tuple[str, str]:
    if not isinstance(step, str) or not step.strip() or len(step) > 100:
        raise InvalidInput("step must be a short name such as 'train_reward' (1 to 100 characters).")
    if not isinstance(device_type, str) or not device_type.strip():
        raise InvalidInput("device_type must name the GPU, such as 'H100' or 'cpu'.")
    if len(device_type) > LedgerEntry._meta.get_field("device_type").max_length:
        raise InvalidInput("device_type is too long.")
    return step.strip(), device_type.strip()


def _gpu_seconds(value, *, name: str) -> Decimal:
    seconds = _decimal(value, name=name)
    if seconds < 0 or seconds > MAX_GPU_SECONDS:
        raise InvalidInput(f"{name} must be between 0 and {MAX_GPU_SECONDS} seconds; got {value!r}.")
    return seconds.quantize(Decimal("0.0001"))


def gpu_step_estimate(*, campaign: Campaign, step: str, device_type: str) -> GpuEstimate:
    """The mean GPU-seconds of earlier charged runs of the step (same device type first) and their cost on
    this device type; zero seconds with `runs=0` when the step never ran."""
    step, device_type = _step_and_device(step, device_type)
    runs, mean_seconds = gpu_step_history(campaign_id=campaign.pk, step=step, device_type=device_type)
    seconds = Decimal("0") if mean_seconds is None else mean_seconds.quantize(Decimal("0.0001"))
    return GpuEstimate(seconds=seconds, cost=gpu_cost(campaign=campaign, device_type=device_type, seconds=seconds), runs=runs)


def gpu_step_check(
    *, campaign: Campaign, step: str, device_type: str, estimate_seconds: Decimal | float | None = None
) -> GpuEstimate:
    """The estimate for a GPU step, or BudgetExhausted when starting it would pass the GPU-hour or money cap.

    The estimate is the larger of the earlier runs' mean and the caller's `estimate_seconds` (a caller can
    only make the check stricter; with no history its estimate is all there is). With no estimate at all the
    step is refused only when nothing is left. Reserves nothing and takes no lock: a round runs one GPU step
    at a time, and the charge after the run is the record.
    """
    step, device_type = _step_and_device(step, device_type)
    estimate = gpu_step_estimate(campaign=campaign, step=step, device_type=device_type)
    if estimate_seconds is not None:
        given = _gpu_seconds(estimate_seconds, name="estimate_seconds")
        if given > estimate.seconds:
            cost = gpu_cost(campaign=campaign, device_type=device_type, seconds=given)
            estimate = GpuEstimate(seconds=given, cost=cost, runs=0)
    campaign = Campaign.objects.get(pk=campaign.pk)  # the caps as they are now, not as the caller loaded them
    problems = []
    if campaign.gpu_hour_budget is not None:
        left_hours = campaign.gpu_hour_budget - gpu_seconds_used(campaign_id=campaign.pk) / SECONDS_PER_HOUR
        if estimate.hours > left_hours or left_hours <= 0:
            problems.append(
                _overrun("the GPU budget", _hours(estimate.hours - left_hours), "h")
                + f" ({_hours(max(left_hours, Decimal(0)))} of {_hours(campaign.gpu_hour_budget)} h left)"
            )
    if campaign.money_budget is not None:
        funds = campaign_money(campaign_id=campaign.pk, now=timezone.now(), price=estimate.cost)
        left_money = funds.left
        price = gpu_hour_price(campaign=campaign, device_type=device_type)
        if funds.exceeded or (left_money <= 0 and price > 0):
            problems.append(
                _overrun("the money budget", money(estimate.cost - left_money), campaign.currency)
                + f" ({money(max(left_money, Decimal(0)))} of {campaign.money_budget} {campaign.currency} left)"
            )
    if problems:
        if estimate.runs:
            basis = f"the mean of {estimate.runs} earlier run(s)"
        elif estimate_seconds is not None:
            basis = "the caller's estimate"
        else:
            basis = "no earlier runs and no estimate given"
        raise BudgetExhausted(
            f"GPU step {step!r} on {device_type} was not started: its estimate of {_hours(estimate.hours)} GPU-hours "
            f"({estimate.cost} {campaign.currency}, {basis}) would pass {' and '.join(problems)}.",
            step=step,
            device_type=device_type,
            estimate_hours=str(_hours(estimate.hours)),
            estimate_cost=str(estimate.cost),
        )
    return estimate


def _hours(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.0001"))


def _overrun(cap: str, by: Decimal, unit: str) -> str:
    """'the GPU budget by 0.25 h', or just the cap when the step passes it only because nothing is left."""
    return f"{cap} by {by} {unit}" if by > 0 else cap


@transaction.atomic
def gpu_usage_charge(
    *,
    campaign: Campaign,
    round: Round | None = None,  # noqa: A002 - the name of the model field
    step: str,
    task_ref: str,
    device_type: str,
    gpu_seconds: Decimal | float,
    recorded_by: AbstractBaseUser | None = None,
) -> LedgerEntry:
    """Charge the GPU time a finished task used, at the campaign's price for the device type.

    Idempotent per (campaign, task_ref): a redelivered task gets the first charge back and nothing is added
    (the first report stands). The time was used, so the charge is recorded even past a cap (logged).
    Holds the campaign row lock (`FOR UPDATE`), which also orders two deliveries of the same task.
    """
    step, device_type = _step_and_device(step, device_type)
    if not isinstance(task_ref, str) or not task_ref.strip():
        raise InvalidInput("task_ref must name the task (its Celery id or a step key), so it is charged once.")
    task_ref = task_ref.strip()
    if len(task_ref) > LedgerEntry._meta.get_field("task_ref").max_length:
        raise InvalidInput("task_ref is too long.")
    seconds = _gpu_seconds(gpu_seconds, name="gpu_seconds")
    campaign = campaign_lock(campaign_id=campaign.pk)
    existing = LedgerEntry.objects.filter(
        campaign=campaign, category=LedgerCategory.GPU, task_ref=task_ref, reverses__isnull=True
    ).first()
    if existing is not None:
        return existing
    entry = LedgerEntry.objects.create(
        campaign=campaign,
        category=LedgerCategory.GPU,
        amount=gpu_cost(campaign=campaign, device_type=device_type, seconds=seconds),
        quantity=seconds,
        unit=GPU_SECONDS_UNIT,
        round=_round_of(campaign, round),
        task_ref=task_ref,
        device_type=device_type,
        recorded_by=recorded_by,
        reason=step_reason(step),
    )
    if campaign.gpu_hour_budget is not None:
        used_hours = gpu_seconds_used(campaign_id=campaign.pk) / SECONDS_PER_HOUR
        if used_hours > campaign.gpu_hour_budget:
            logger.warning(
                "Campaign %s used %s of %s GPU-hours after task %s.", campaign.name, used_hours,
                campaign.gpu_hour_budget, task_ref,
            )
    return entry
