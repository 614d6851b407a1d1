"""A labeler's own work and pay, campaign by campaign: what the "My work" page shows them.

What a labeler earned in a campaign is the sum of the ledger entries in their name except platform fees (the
platform's money, not theirs) and GPU time: answer charges, bonuses and corrections staff recorded to them, with
reversals, so a reversed charge nets to zero. That is the budget page's rule (`selectors.budget.labeler_earnings`,
computed there for all of a campaign's labelers at once); tests/annotator/test_accounts.py checks that the two agree.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, DecimalField, IntegerField, Q, Sum, Value
from django.db.models.functions import Coalesce

from annotator.models import (
    ANSWER_CHARGE_CATEGORIES,
    Assignment,
    AssignmentStatus,
    Campaign,
    CampaignMembership,
    LedgerCategory,
    LedgerEntry,
)

NOT_EARNINGS = (LedgerCategory.PLATFORM_FEE, LedgerCategory.GPU)  # ledger entries with a labeler that are not pay
ZERO = Decimal("0")
_money_sum = DecimalField(max_digits=20, decimal_places=4)


@dataclass(frozen=True)
class CampaignWork:
    campaign: Campaign
    role: str  # CampaignRole
    judgements: int
    ratings: int
    milliseconds: int  # time on the page over those answers, as recorded
    earned: Decimal  # in the campaign's currency; see the module's rule
    for_answers: Decimal  # the part of `earned` paid for answers (labeling and evaluation items)

    @property
    def answers(self) -> int:
        return self.judgements + self.ratings

    @property
    def other_pay(self) -> Decimal:
        """Bonuses and corrections staff recorded to the labeler."""
        return self.earned - self.for_answers

    @property
    def time_on_page(self) -> str:
        seconds = self.milliseconds // 1000
        return f"{seconds // 3600} h {seconds // 60 % 60:02d} min {seconds % 60:02d} s"


def work_by_campaign(*, user: AbstractBaseUser) -> list[CampaignWork]:
    """Per campaign the user is a member of (by title): their answers, time on the page and pay. Campaigns they
    are not a member of are left out, work done there or not. Three queries."""
    memberships = list(
        CampaignMembership.objects.filter(user=user).select_related("campaign").order_by("campaign__title", "campaign_id")
    )
    campaign_ids = [m.campaign_id for m in memberships]
    work = {
        row["comparison__campaign"]: row
        for row in Assignment.objects.filter(
            labeler=user, status=AssignmentStatus.SUBMITTED, comparison__campaign__in=campaign_ids
        )
        .values("comparison__campaign")
        .annotate(
            judgements=Count("judgement"),
            ratings=Count("rating"),
            milliseconds=Coalesce(
                Sum(Coalesce("judgement__milliseconds", "rating__milliseconds")), Value(0), output_field=IntegerField()
            ),
        )
        .order_by()
    }
    pay = {
        row["campaign"]: row
        for row in LedgerEntry.objects.filter(labeler=user, campaign__in=campaign_ids)
        .exclude(category__in=NOT_EARNINGS)
        .values("campaign")
        .annotate(
            earned=Coalesce(Sum("amount"), Value(ZERO), output_field=_money_sum),
            for_answers=Coalesce(
                Sum("amount", filter=Q(category__in=ANSWER_CHARGE_CATEGORIES)), Value(ZERO), output_field=_money_sum
            ),
        )
        .order_by()
    }
    rows = []
    for membership in memberships:
        done = work.get(membership.campaign_id, {})
        paid = pay.get(membership.campaign_id, {})
        rows.append(
            CampaignWork(
                campaign=membership.campaign,
                role=membership.role,
                judgements=done.get("judgements", 0),
                ratings=done.get("ratings", 0),
                milliseconds=done.get("milliseconds", 0),
                earned=paid.get("earned", ZERO),
                for_answers=paid.get("for_answers", ZERO),
            )
        )
    return rows


def earned_by_currency(rows: list[CampaignWork]) -> dict[str, Decimal]:
    """The rows' pay added up per currency (campaigns may pay in different ones), by currency code."""
    totals: dict[str, Decimal] = {}
    for row in rows:
        totals[row.campaign.currency] = totals.get(row.campaign.currency, ZERO) + row.earned
    return dict(sorted(totals.items()))
