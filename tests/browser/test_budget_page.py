"""A staff member opens the budget page from the admin and reads figures that match the ledger."""

from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from annotator.models import LedgerEntry
from annotator.services.assignments import assignment_claim
from annotator.services.budget import gpu_usage_charge, ledger_entry_record
from annotator.services.judgements import judgement_submit
from annotator.selectors.money import campaign_money
from tests.browser.conftest import login
from tests.factories import PASSWORD, CampaignFactory, ComparisonFactory, LabelerFactory, StaffFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shown(amount: Decimal) -> str:
    """How the page prints an amount: two decimals, rounded half up."""
    return str(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def test_staff_reads_the_budget_page_and_its_figures_match_the_ledger(page, live_server, console_errors):
    staff = StaffFactory()
    campaign = CampaignFactory(
        name="sonnets", money_budget=Decimal("5.00"), gpu_hour_budget=Decimal("1"),
        pay_per_judgement=Decimal("0.35"), platform_fee_percent=Decimal("15"),
    )
    ComparisonFactory.create_batch(4, campaign=campaign)
    anne, ben = (LabelerFactory(username=name, campaigns=[campaign]) for name in ("anne", "ben"))
    for labeler, milliseconds in ((anne, 12_000), (anne, 20_000), (ben, 95_000)):
        lease = assignment_claim(labeler=labeler, campaign=campaign)
        judgement_submit(labeler=labeler, assignment_id=lease.pk, choice="a", milliseconds=milliseconds)
    assignment_claim(labeler=ben, campaign=campaign)  # a live lease: reserved money
    gpu_usage_charge(campaign=campaign, step="train_reward", task_ref="t-1", device_type="H100", gpu_seconds=900)
    ledger_entry_record(campaign=campaign, category="contractor", amount="1.2345", reason="QA review", recorded_by=staff)

    login(page, live_server, staff.username, PASSWORD)
    page.goto(f"{live_server.url}/admin/")
    page.click("#budget-module a.section")
    page.click("text=sonnets")
    page.wait_for_selector("#burn-down polyline.spend")

    funds = campaign_money(campaign_id=campaign.pk, now=timezone.now())
    spent, reserved = funds.spent, funds.reserved
    assert page.inner_text("#money-spent") == shown(spent)
    assert page.inner_text("#money-reserved") == shown(reserved)
    assert page.inner_text("#money-remaining") == shown(campaign.money_budget - spent - reserved)
    assert page.inner_text("#gpu-used") == "0.25"
    for category in ("labeling", "platform_fee", "gpu", "contractor"):
        amount = LedgerEntry.objects.filter(campaign=campaign, category=category).aggregate(s=Sum("amount"))["s"]
        assert page.inner_text(f'#by-category tr[data-category="{category}"] td:last-child') == shown(amount)
    for labeler in (anne, ben):
        earned = LedgerEntry.objects.filter(campaign=campaign, labeler=labeler, category="labeling").aggregate(
            s=Sum("amount")
        )["s"]
        assert page.inner_text(f'#by-labeler tr[data-labeler="{labeler.username}"] td.earned') == shown(earned)
    assert "more judgements" in page.inner_text("#projection")
    assert console_errors == []

    response = page.request.get(f"{live_server.url}/staff/budget/sonnets/ledger.csv")
    assert response.ok and response.text().count("\n") == LedgerEntry.objects.filter(campaign=campaign).count() + 1
