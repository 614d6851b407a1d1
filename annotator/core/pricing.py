"""What a labeler is paid for one item: pure arithmetic on a campaign's and a profile's rates.

Rules, in order: an AI judge costs its API price per call; a labeler with their own per-judgement price is
paid that; an hourly campaign (or a labeler with their own hourly rate) pays for the recorded time on the
page, at most `max_paid_seconds_per_item`; otherwise the campaign's per-judgement price. The campaign's
platform fee is added on top for people and simulated labelers (crowd platforms charge one).
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from annotator.models import Campaign, LabelerKind, LabelerProfile, PayModel, TaskKind

CENT_FRACTION = Decimal("0.0001")
SECONDS_PER_HOUR = Decimal(3600)


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT_FRACTION, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class ItemPrice:
    pay: Decimal  # to the labeler (or the API provider)
    fee: Decimal  # platform fee on top
    paid_seconds: Decimal | None  # hourly pay only: the seconds that were paid

    @property
    def total(self) -> Decimal:
        return self.pay + self.fee


def _hourly_rate(campaign: Campaign, profile: LabelerProfile | None) -> Decimal | None:
    if profile is not None and profile.pay_per_judgement is not None:
        return None
    if profile is not None and profile.hourly_rate is not None:
        return profile.hourly_rate
    if campaign.pay_model == PayModel.HOURLY:
        return campaign.hourly_rate
    return None


def _fee(campaign: Campaign, profile: LabelerProfile | None, pay: Decimal) -> Decimal:
    if profile is not None and profile.kind == LabelerKind.AI_JUDGE:
        return Decimal("0")
    return money(pay * campaign.platform_fee_percent / 100)


def item_price(*, campaign: Campaign, profile: LabelerProfile | None, milliseconds: int | None = None) -> ItemPrice:
    """The price of one item. With `milliseconds=None` (at assignment) hourly pay assumes the full per-item cap,
    which is the most the item can cost and so what is reserved."""
    if profile is not None and profile.kind == LabelerKind.AI_JUDGE:
        pay = money(profile.api_cost_per_call)
        return ItemPrice(pay=pay, fee=Decimal("0"), paid_seconds=None)
    rate = _hourly_rate(campaign, profile)
    if rate is None:
        per_item = profile.pay_per_judgement if profile is not None and profile.pay_per_judgement is not None else campaign.pay_per_judgement
        pay = money(per_item)
        return ItemPrice(pay=pay, fee=_fee(campaign, profile, pay), paid_seconds=None)
    cap = Decimal(campaign.max_paid_seconds_per_item)
    seconds = cap if milliseconds is None else min(Decimal(milliseconds) / 1000, cap)
    pay = money(rate * seconds / SECONDS_PER_HOUR)
    return ItemPrice(pay=pay, fee=_fee(campaign, profile, pay), paid_seconds=seconds)


def answer_unit(task_kind: str) -> str:
    """The unit an answer's charge is counted in on the ledger."""
    return "judgements" if task_kind == TaskKind.PAIRWISE else "ratings"
