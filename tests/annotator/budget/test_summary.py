"""The budget summary's figures, checked against what the fixture spent (see conftest.funded_campaign)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from annotator.selectors.budget import campaign_budget_summary
from annotator.services.assignments import assignment_claim
from annotator.services.judgements import judgement_submit
from annotator.views.budget import burn_down_chart
from tests.factories import CampaignFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def test_money_gpu_and_breakdowns(funded_campaign):
    s = campaign_budget_summary(campaign=funded_campaign.campaign, now=timezone.now())
    assert (s.money.budget, s.money.spent, s.money.reserved, s.money.remaining) == (
        Decimal("10.00"), Decimal("3.5500"), Decimal("0.1100"), Decimal("6.3400"),
    )
    assert (s.gpu.budget_hours, s.gpu.used_hours, s.gpu.remaining_hours, s.gpu.cost) == (
        Decimal("2"), Decimal("0.5"), Decimal("1.5"), Decimal("1.0000"),
    )
    assert {c.category: (c.entries, c.amount) for c in s.categories} == {
        "labeling": (5, Decimal("0.5000")), "gpu": (1, Decimal("1.0000")), "contractor": (1, Decimal("2.0000")),
        "platform_fee": (5, Decimal("0.0500")), "other": (0, Decimal("0")), "evaluation": (0, Decimal("0")),
    }
    rounds = [(r.round.number if r.round else None, r.items, r.labeling, r.gpu, r.gpu_hours, r.other, r.total) for r in s.rounds]
    assert rounds == [
        (1, 3, Decimal("0.3300"), Decimal("1.0000"), Decimal("0.5"), Decimal("0"), Decimal("1.3300")),
        (2, 2, Decimal("0.2200"), Decimal("0"), Decimal("0"), Decimal("0"), Decimal("0.2200")),
        (None, 0, Decimal("0"), Decimal("0"), Decimal("0"), Decimal("2.0000"), Decimal("2.0000")),
    ]


def test_labeler_earnings_show_effective_hourly_pay_and_underpayment(funded_campaign, ai_judge):
    campaign = funded_campaign.campaign
    MembershipFactory(campaign=campaign, user=ai_judge)
    lease = assignment_claim(labeler=ai_judge, campaign=campaign)
    judgement_submit(labeler=ai_judge, assignment_id=lease.pk, choice="b", milliseconds=400)
    s = campaign_budget_summary(campaign=campaign, now=timezone.now())
    rows = {r.username: (r.kind, r.items, r.seconds_on_page, r.earned, r.effective_hourly, r.underpaid) for r in s.labelers}
    assert rows == {
        "fast": ("human", 3, Decimal("30"), Decimal("0.3000"), Decimal("36"), False),
        "slow": ("human", 2, Decimal("120"), Decimal("0.2000"), Decimal("6"), True),  # 6/h against the campaign's 18/h
        "judge": ("ai_judge", 1, Decimal("0.4"), Decimal("0.0020"), Decimal("18"), False),
    }


def test_cost_per_judgement_and_per_useful_judgement(funded_campaign):
    costs = campaign_budget_summary(campaign=funded_campaign.campaign, now=timezone.now()).costs
    assert (costs.items, costs.useful) == (5, 3)  # one tie and one "both bad" teach nothing
    assert costs.labeling_per_item == Decimal("0.11")
    assert costs.labeling_per_useful.quantize(Decimal("0.0001")) == Decimal("0.1833")
    assert costs.total_per_useful.quantize(Decimal("0.0001")) == Decimal("1.1833")


def test_projection_at_the_recent_rate(funded_campaign):
    now = timezone.now()
    p = campaign_budget_summary(campaign=funded_campaign.campaign, now=now).projection
    # Everything was spent just now, so the window is the minimum hour: 3.55 an hour.
    assert (p.window_end - p.window_start, p.spent_in_window, p.items_in_window) == (timedelta(hours=1), Decimal("3.5500"), 5)
    assert p.spend_per_day == Decimal("3.55") * 24
    assert p.items_left == 57  # 6.34 left at 0.11 an item
    expected = now + timedelta(hours=float(Decimal("6.34") / Decimal("3.55")))
    assert abs(p.runs_out_at - expected) < timedelta(seconds=1)
    later = campaign_budget_summary(campaign=funded_campaign.campaign, now=now + timedelta(days=8)).projection
    assert (later.spent_in_window, later.runs_out_at) == (Decimal("0"), None)


def test_burn_down_series_and_chart(funded_campaign):
    campaign = funded_campaign.campaign
    now = timezone.now()
    s = campaign_budget_summary(campaign=campaign, now=now)
    assert s.burn_down[0] == (campaign.created_at, Decimal("0")) and s.burn_down[-1] == (now, Decimal("3.5500"))
    assert [spent for _, spent in s.burn_down] == sorted(spent for _, spent in s.burn_down)
    chart = burn_down_chart(
        series=s.burn_down, budget=campaign.money_budget, reserved=s.money.reserved,
        spend_per_day=s.projection.spend_per_day,
    )
    points = [tuple(map(float, p.split(","))) for p in chart.points.split()]
    assert points[0] == (chart.left, chart.top)  # the whole budget left at the start, at the top
    projection = [tuple(map(float, p.split(","))) for p in chart.projection.split()]
    assert projection[0] == points[-1] and projection[1][0] == points[-1][0]  # reservations drop straight down
    assert projection[2][1] > projection[1][1]  # then the recent rate carries on down (SVG y grows downwards)
    assert [t.label for t in chart.y_ticks] == ["0.00", "5.00", "10.00"]


def test_campaign_with_nothing_spent_and_no_cap():
    campaign = CampaignFactory(money_budget=None)
    now = timezone.now()
    s = campaign_budget_summary(campaign=campaign, now=now)
    assert (s.money.remaining, s.money.used_fraction, s.costs.labeling_per_item, s.labelers) == (None, None, None, [])
    assert (s.projection.items_left, s.projection.runs_out_at) == (None, None)
    chart = burn_down_chart(series=s.burn_down, budget=None, reserved=Decimal("0"), spend_per_day=Decimal("0"))
    assert chart.projection == "" and chart.y_title == "money spent"
