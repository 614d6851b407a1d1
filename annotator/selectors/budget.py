"""Reads about money and GPU time: what a campaign has, spent, holds and is projected to last.

Every figure is a sum over the append-only ledger (reversals included, so a reversed charge nets to zero)
or over live leases for reservations; the one cached sum (the campaign's memoised ledger prefix, read by
`annotator.selectors.money.campaign_money`) is checked against the entries by `ledger_prefix_check`.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, DecimalField, IntegerField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Trunc

from annotator.models import (
    ANSWER_CHARGE_CATEGORIES,
    Assignment,
    AssignmentStatus,
    Campaign,
    Choice,
    Judgement,
    LabelerKind,
    LedgerCategory,
    LedgerEntry,
    Rating,
    Round,
)
from annotator.selectors.campaigns import campaigns_managed
from annotator.selectors.money import campaign_money

GPU_SECONDS_UNIT = "gpu_seconds"
SECONDS_PER_HOUR = Decimal(3600)
PROJECTION_WINDOW = timedelta(days=7)
# A younger spending history is stretched to this so a burst of a few minutes does not project a crazy rate.
PROJECTION_MIN_WINDOW = timedelta(hours=1)
# Labeling money: answers on training and on evaluation items (ANSWER_CHARGE_CATEGORIES) and the fee on them.
LABELING_CATEGORIES = (*ANSWER_CHARGE_CATEGORIES, LedgerCategory.PLATFORM_FEE)
USEFUL_CHOICES = (Choice.A, Choice.B)  # a tie or "both bad" teaches the reward model nothing

ZERO = Decimal("0")
_money_sum = DecimalField(max_digits=20, decimal_places=4)


@dataclass(frozen=True)
class LedgerPrefixCheck:
    campaign: Campaign
    end_id: int
    memo: Decimal  # the stored sum
    entries: int  # entries with id <= end_id
    recomputed: Decimal  # their sum, added again

    @property
    def ok(self) -> bool:
        return self.memo == self.recomputed


def ledger_prefix_check(*, campaign: Campaign) -> LedgerPrefixCheck:
    """Re-add the campaign's memoised ledger prefix from its entries. The memo is read first; the entries up
    to its end can no longer change, so reading them a moment later sees the same ones."""
    row = Campaign.objects.filter(pk=campaign.pk).values("ledger_prefix_end_id", "ledger_prefix_sum").get()
    totals = LedgerEntry.objects.filter(campaign=campaign, pk__lte=row["ledger_prefix_end_id"]).aggregate(
        entries=Count("pk"), amount=Coalesce(Sum("amount"), Value(ZERO), output_field=_money_sum)
    )
    return LedgerPrefixCheck(
        campaign=campaign, end_id=row["ledger_prefix_end_id"], memo=row["ledger_prefix_sum"],
        entries=totals["entries"], recomputed=totals["amount"],
    )


def _sum(field: str, **filter_kwargs) -> Coalesce:
    """SUM(field) with an optional filter, zero when there are no rows."""
    condition = Q(**filter_kwargs) if filter_kwargs else None
    return Coalesce(Sum(field, filter=condition), Value(ZERO), output_field=_money_sum)


def step_reason(step: str) -> str:
    """The `reason` a GPU charge carries, which is also how earlier runs of a step are found."""
    return f"GPU step: {step}"


def campaigns_for_budget(*, user: AbstractBaseUser | None = None) -> QuerySet[Campaign]:
    """Campaigns, active first, for the budget pages: those the user runs (`campaigns_managed`: staff all, a
    manager theirs), or with no user (the command line) all of them."""
    campaigns = Campaign.objects.all() if user is None else campaigns_managed(user=user)
    return campaigns.order_by("-is_active", "name")


def ledger_entries(*, campaign: Campaign) -> QuerySet[LedgerEntry]:
    """The campaign's ledger, oldest first, with the rows a listing or an export names."""
    return (
        LedgerEntry.objects.filter(campaign=campaign)
        .select_related("labeler", "round", "recorded_by", "reversed_by")
        .order_by("created_at", "id")
    )


def gpu_seconds_used(*, campaign_id: int) -> Decimal:
    """GPU-seconds charged to the campaign (reversals subtract their seconds)."""
    return LedgerEntry.objects.filter(
        campaign_id=campaign_id, category=LedgerCategory.GPU, unit=GPU_SECONDS_UNIT
    ).aggregate(seconds=_sum("quantity"))["seconds"]


def gpu_step_history(*, campaign_id: int, step: str, device_type: str) -> tuple[int, Decimal | None]:
    """(runs, mean GPU-seconds) of earlier charged runs of a step, on the same device type when there are
    any, otherwise on any device. Reversed charges are left out: they recorded something that was wrong."""
    runs = LedgerEntry.objects.filter(
        campaign_id=campaign_id,
        category=LedgerCategory.GPU,
        unit=GPU_SECONDS_UNIT,
        reason=step_reason(step),
        reverses__isnull=True,
        reversed_by__isnull=True,
    )
    for candidates in (runs.filter(device_type=device_type), runs):
        stats = candidates.aggregate(n=Count("pk"), total=_sum("quantity"))
        if stats["n"]:
            return stats["n"], stats["total"] / stats["n"]
    return 0, None


@dataclass(frozen=True)
class MoneyFigures:
    budget: Decimal | None
    spent: Decimal
    reserved: Decimal

    @property
    def remaining(self) -> Decimal | None:
        """What can still be committed: budget minus spent and reserved (None without a cap)."""
        return None if self.budget is None else self.budget - self.spent - self.reserved

    @property
    def used_fraction(self) -> float | None:
        if not self.budget:
            return None
        return float((self.spent + self.reserved) / self.budget)


@dataclass(frozen=True)
class GpuFigures:
    budget_hours: Decimal | None
    used_hours: Decimal
    cost: Decimal

    @property
    def remaining_hours(self) -> Decimal | None:
        return None if self.budget_hours is None else self.budget_hours - self.used_hours


def money_figures(*, campaign: Campaign, now: datetime) -> MoneyFigures:
    funds = campaign_money(campaign_id=campaign.pk, now=now)
    return MoneyFigures(budget=campaign.money_budget, spent=funds.spent, reserved=funds.reserved)


def gpu_figures(*, campaign: Campaign) -> GpuFigures:
    sums = LedgerEntry.objects.filter(campaign=campaign, category=LedgerCategory.GPU).aggregate(
        seconds=_sum("quantity", unit=GPU_SECONDS_UNIT), cost=_sum("amount")
    )
    return GpuFigures(
        budget_hours=campaign.gpu_hour_budget, used_hours=sums["seconds"] / SECONDS_PER_HOUR, cost=sums["cost"]
    )


@dataclass(frozen=True)
class CategorySpend:
    category: str
    label: str
    entries: int
    amount: Decimal


def spend_by_category(*, campaign: Campaign) -> list[CategorySpend]:
    """Every ledger category with its sum, zero ones included, in the order the model declares them."""
    sums = {
        row["category"]: row
        for row in LedgerEntry.objects.filter(campaign=campaign)
        .values("category")
        .annotate(entries=Count("pk"), amount=_sum("amount"))
        .order_by()
    }
    return [
        CategorySpend(
            category=category,
            label=label,
            entries=sums.get(category, {}).get("entries", 0),
            amount=sums.get(category, {}).get("amount", ZERO),
        )
        for category, label in LedgerCategory.choices
    ]


@dataclass(frozen=True)
class RoundSpend:
    round: Round | None  # None: spending not tied to a round (manual entries, items without a round)
    items: int
    labeling: Decimal  # labeler pay and platform fees
    gpu: Decimal
    gpu_hours: Decimal
    other: Decimal  # contractors and other manual entries

    @property
    def total(self) -> Decimal:
        return self.labeling + self.gpu + self.other


def spend_by_round(*, campaign: Campaign) -> list[RoundSpend]:
    """Spending per round (oldest first), then what is tied to no round; rounds with nothing yet included."""
    ledger = {
        row["round"]: row
        for row in LedgerEntry.objects.filter(campaign=campaign)
        .values("round")
        .annotate(
            labeling=_sum("amount", category__in=LABELING_CATEGORIES),
            gpu=_sum("amount", category=LedgerCategory.GPU),
            gpu_seconds=_sum("quantity", category=LedgerCategory.GPU, unit=GPU_SECONDS_UNIT),
            other=_sum("amount", category__in=[LedgerCategory.CONTRACTOR, LedgerCategory.OTHER]),
        )
        .order_by()
    }
    items = dict(
        Assignment.objects.filter(comparison__campaign=campaign, status=AssignmentStatus.SUBMITTED)
        .values_list("comparison__round")
        .annotate(n=Count("pk"))
        .order_by()
    )
    rounds: list[Round | None] = list(Round.objects.filter(campaign=campaign).order_by("number"))
    if None in ledger or None in items:
        rounds.append(None)
    rows = []
    for round_ in rounds:
        key = None if round_ is None else round_.pk
        sums = ledger.get(key, {})
        rows.append(
            RoundSpend(
                round=round_,
                items=items.get(key, 0),
                labeling=sums.get("labeling", ZERO),
                gpu=sums.get("gpu", ZERO),
                gpu_hours=sums.get("gpu_seconds", ZERO) / SECONDS_PER_HOUR,
                other=sums.get("other", ZERO),
            )
        )
    return rows


@dataclass(frozen=True)
class LabelerEarnings:
    user_id: int
    username: str
    kind: str
    items: int  # judgements and ratings submitted
    seconds_on_page: Decimal  # recorded time on the page over those items
    earned: Decimal  # what the labeler is owed: their ledger entries, platform fees excluded
    reference_hourly_rate: Decimal  # the campaign's hourly rate, to see underpayment against

    @property
    def effective_hourly(self) -> Decimal | None:
        if not self.seconds_on_page:
            return None
        return self.earned * SECONDS_PER_HOUR / self.seconds_on_page

    @property
    def underpaid(self) -> bool:
        """A person earning less per hour on the page than the campaign's hourly rate."""
        hourly = self.effective_hourly
        return self.kind == LabelerKind.HUMAN and hourly is not None and hourly < self.reference_hourly_rate


def labeler_earnings(*, campaign: Campaign) -> list[LabelerEarnings]:
    """Per labeler who submitted or was paid anything: items, time on the page, earnings; by username."""
    work = {
        row["labeler"]: row
        for row in Assignment.objects.filter(comparison__campaign=campaign, status=AssignmentStatus.SUBMITTED)
        .values("labeler")
        .annotate(
            items=Count("pk"),
            milliseconds=Coalesce(
                Sum(Coalesce("judgement__milliseconds", "rating__milliseconds")), Value(0), output_field=IntegerField()
            ),
        )
        .order_by()
    }
    earned = dict(
        LedgerEntry.objects.filter(campaign=campaign, labeler__isnull=False)
        .exclude(category__in=[LedgerCategory.PLATFORM_FEE, LedgerCategory.GPU])
        .values_list("labeler")
        .annotate(amount=_sum("amount"))
        .order_by()
    )
    users = get_user_model().objects.filter(pk__in=set(work) | set(earned)).select_related("labeler")
    rows = []
    for user in users.order_by("username"):
        profile = getattr(user, "labeler", None)
        row = work.get(user.pk, {})
        rows.append(
            LabelerEarnings(
                user_id=user.pk,
                username=user.get_username(),
                kind=profile.kind if profile else "",
                items=row.get("items", 0),
                seconds_on_page=Decimal(row.get("milliseconds", 0)) / 1000,
                earned=earned.get(user.pk, ZERO),
                reference_hourly_rate=campaign.hourly_rate,
            )
        )
    return rows


@dataclass(frozen=True)
class JudgementCosts:
    items: int  # judgements and ratings
    useful: int  # items that say something: a preference (not tie, not both bad), or any rating
    labeling_cost: Decimal  # labeler pay and platform fees
    total_cost: Decimal  # everything in the ledger, GPU and contractors included

    @staticmethod
    def _per(cost: Decimal, count: int) -> Decimal | None:
        return cost / count if count else None

    @property
    def labeling_per_item(self) -> Decimal | None:
        return self._per(self.labeling_cost, self.items)

    @property
    def labeling_per_useful(self) -> Decimal | None:
        return self._per(self.labeling_cost, self.useful)

    @property
    def total_per_useful(self) -> Decimal | None:
        return self._per(self.total_cost, self.useful)


def judgement_costs(*, campaign: Campaign) -> JudgementCosts:
    judgements = Judgement.objects.filter(assignment__comparison__campaign=campaign).aggregate(
        n=Count("pk"), useful=Count("pk", filter=Q(choice__in=USEFUL_CHOICES))
    )
    ratings = Rating.objects.filter(assignment__comparison__campaign=campaign).count()
    costs = LedgerEntry.objects.filter(campaign=campaign).aggregate(
        labeling=_sum("amount", category__in=LABELING_CATEGORIES), total=_sum("amount")
    )
    return JudgementCosts(
        items=judgements["n"] + ratings,
        useful=judgements["useful"] + ratings,
        labeling_cost=costs["labeling"],
        total_cost=costs["total"],
    )


@dataclass(frozen=True)
class Projection:
    window_start: datetime
    window_end: datetime
    spent_in_window: Decimal
    items_in_window: int
    labeling_in_window: Decimal
    remaining: Decimal | None  # money that can still be committed; None without a cap

    @property
    def spend_per_day(self) -> Decimal:
        seconds = Decimal((self.window_end - self.window_start).total_seconds())
        return self.spent_in_window * 86400 / seconds

    @property
    def cost_per_item(self) -> Decimal | None:
        return self.labeling_in_window / self.items_in_window if self.items_in_window else None

    @property
    def items_left(self) -> int | None:
        """How many more items the remaining money pays for at the window's cost per item."""
        cost = self.cost_per_item
        if self.remaining is None or not cost:
            return None
        return int((max(self.remaining, ZERO) / cost).to_integral_value(rounding=ROUND_FLOOR))

    @property
    def runs_out_at(self) -> datetime | None:
        """When the remaining money is gone at the window's spending rate (None: no cap, or no spending)."""
        if self.remaining is None or self.spent_in_window <= 0:
            return None
        days = max(self.remaining, ZERO) / self.spend_per_day
        return self.window_end + timedelta(days=float(days))


def spend_projection(*, campaign: Campaign, now: datetime, remaining: Decimal | None) -> Projection:
    """Spending over the last 7 days (or since the first charge, when that is later; at least an hour)."""
    first = (
        LedgerEntry.objects.filter(campaign=campaign, created_at__gt=now - PROJECTION_WINDOW)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    start = min(first or now, now - PROJECTION_MIN_WINDOW)
    window = LedgerEntry.objects.filter(campaign=campaign, created_at__gt=start, created_at__lte=now)
    sums = window.aggregate(
        spent=_sum("amount"),
        labeling=_sum("amount", category__in=LABELING_CATEGORIES),
        items=Count("pk", filter=Q(category__in=ANSWER_CHARGE_CATEGORIES, assignment__isnull=False, reverses__isnull=True)),
    )
    return Projection(
        window_start=start,
        window_end=now,
        spent_in_window=sums["spent"],
        items_in_window=sums["items"],
        labeling_in_window=sums["labeling"],
        remaining=remaining,
    )


def burn_down_series(*, campaign: Campaign, now: datetime) -> list[tuple[datetime, Decimal]]:
    """Cumulative spending over time: (bucket start, spent so far), from the campaign's start to now.

    Buckets are minutes, hours or days depending on how long the campaign has been spending, so the series
    stays a few hundred points at most.
    """
    first = LedgerEntry.objects.filter(campaign=campaign).order_by("created_at").values_list("created_at", flat=True)
    first_at = first.first()
    if first_at is None:
        return [(campaign.created_at, ZERO), (now, ZERO)]
    span = now - first_at
    kind = "minute" if span <= timedelta(hours=3) else "hour" if span <= timedelta(days=7) else "day"
    buckets = (
        LedgerEntry.objects.filter(campaign=campaign, created_at__lte=now)
        .annotate(bucket=Trunc("created_at", kind))
        .values("bucket")
        .annotate(amount=_sum("amount"))
        .order_by("bucket")
    )
    start = min(campaign.created_at, first_at)
    series = [(start, ZERO)]
    spent = ZERO
    for row in buckets:
        spent += row["amount"]
        series.append((max(row["bucket"], start), spent))
    series.append((now, spent))
    return series


@dataclass(frozen=True)
class BudgetSummary:
    campaign: Campaign
    now: datetime
    money: MoneyFigures
    gpu: GpuFigures
    categories: list[CategorySpend]
    rounds: list[RoundSpend]
    labelers: list[LabelerEarnings]
    costs: JudgementCosts
    projection: Projection
    burn_down: list[tuple[datetime, Decimal]]


def campaign_budget_summary(*, campaign: Campaign, now: datetime) -> BudgetSummary:
    """Everything the budget page and `manage.py budget` show for one campaign."""
    money = money_figures(campaign=campaign, now=now)
    return BudgetSummary(
        campaign=campaign,
        now=now,
        money=money,
        gpu=gpu_figures(campaign=campaign),
        categories=spend_by_category(campaign=campaign),
        rounds=spend_by_round(campaign=campaign),
        labelers=labeler_earnings(campaign=campaign),
        costs=judgement_costs(campaign=campaign),
        projection=spend_projection(campaign=campaign, now=now, remaining=money.remaining),
        burn_down=burn_down_series(campaign=campaign, now=now),
    )
