"""The staff budget pages and CSV exports: who may see them, what they show, and staff entries through forms."""

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from annotator.models import LedgerEntry
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

PAGES = ["overview", "campaign", "ledger", "entry_new", "earnings_csv", "ledger_csv"]


def url(name, campaign=None, **kwargs):
    if name == "overview":
        return reverse("budget:overview")
    return reverse(f"budget:{name}", kwargs={"name": campaign.name, **kwargs})


@pytest.fixture
def staff_client(client, funded_campaign):
    client.force_login(funded_campaign.staff)
    return client


def csv_rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_anonymous_visitors_are_sent_to_log_in(client, campaign):
    for page in PAGES:
        response = client.get(url(page, campaign))
        assert response.status_code == 302, page
        assert response.url.startswith(reverse("login") + "?next=/staff/budget/"), page


def test_labelers_are_refused(client, campaign, labeler):
    client.force_login(labeler)
    for page in PAGES:
        assert client.get(url(page, campaign)).status_code == 403, page


def test_labelers_cannot_record_or_reverse(client, funded_campaign):
    client.force_login(funded_campaign.fast)
    data = {"category": "other", "amount": "1", "reason": "a bonus for me"}
    assert client.post(url("entry_new", funded_campaign.campaign), data).status_code == 403
    entry = LedgerEntry.objects.first()
    assert client.post(url("entry_reverse", funded_campaign.campaign, entry_id=entry.pk), {"reason": "x"}).status_code == 403
    assert LedgerEntry.objects.count() == 12


def test_overview_lists_campaigns_with_their_money(staff_client, funded_campaign):
    response = staff_client.get(url("overview"))
    assert response.status_code == 200
    html = response.content.decode()
    assert funded_campaign.campaign.name in html and "3.55" in html and "6.34" in html


def test_campaign_page_shows_the_figures_and_an_inline_svg_chart(staff_client, funded_campaign):
    response = staff_client.get(url("campaign", funded_campaign.campaign))
    assert response.status_code == 200
    html = response.content.decode()
    for fragment in (
        '<dd id="money-spent">3.55</dd>', '<dd id="money-reserved">0.11</dd>', '<dd id="money-remaining" class="">6.34</dd>',
        '<dd id="gpu-used">0.50</dd>', '<dd id="gpu-remaining" class="">1.50</dd>', '<dd id="cost-per-useful">0.1833</dd>',
        '<svg id="burn-down"', 'class="projection"', '<strong id="items-left">57</strong>', 'class="underpaid"',
    ):
        assert fragment in html
    assert "<script" not in html.split('<div id="content-main"')[1]  # the chart is server-drawn SVG


def test_unknown_campaign_is_404(staff_client):
    assert staff_client.get(reverse("budget:campaign", kwargs={"name": "nope"})).status_code == 404


def test_admin_index_links_the_budget_page(staff_client):
    html = staff_client.get(reverse("admin:index")).content.decode()
    assert f'href="{reverse("budget:overview")}"' in html


def test_staff_records_an_entry_through_the_form(staff_client, funded_campaign):
    campaign = funded_campaign.campaign
    assert staff_client.get(url("entry_new", campaign)).status_code == 200
    response = staff_client.post(
        url("entry_new", campaign),
        {"category": "platform_fee", "amount": "12.3456", "quantity": "", "unit": "month", "reason": "Platform fee, March",
         "labeler": funded_campaign.slow.pk, "round": campaign.rounds.get(number=2).pk},
    )
    assert response.status_code == 302 and response.url == url("campaign", campaign)
    entry = LedgerEntry.objects.latest("id")
    assert (entry.category, entry.amount, entry.quantity, entry.recorded_by, entry.labeler, entry.round.number) == (
        "platform_fee", Decimal("12.3456"), Decimal("0"), funded_campaign.staff, funded_campaign.slow, 2,
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"category": "contractor", "amount": "5"}, "This field is required."),
        ({"category": "contractor", "amount": "0", "reason": "r"}, "An entry of zero records nothing."),
        ({"category": "contractor", "amount": "1.23456", "reason": "r"}, "no more than 4 decimal places"),
        ({"category": "nope", "amount": "1", "reason": "r"}, "Select a valid choice."),
        ({"category": "other", "amount": "1", "reason": "r", "round": "999999"}, "Select a valid choice."),
    ],
)
def test_bad_entries_get_400_and_a_clear_message(client, staff, campaign, data, message):
    client.force_login(staff)
    response = client.post(url("entry_new", campaign), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not LedgerEntry.objects.exists()


def test_staff_reverses_an_entry_once(staff_client, funded_campaign):
    campaign = funded_campaign.campaign
    invoice = LedgerEntry.objects.get(category="contractor")
    reverse_url = url("entry_reverse", campaign, entry_id=invoice.pk)
    assert staff_client.get(reverse_url).status_code == 200
    assert staff_client.post(reverse_url, {"reason": ""}).status_code == 400
    response = staff_client.post(reverse_url, {"reason": "Invoice 12 was paid by the client"})
    assert response.status_code == 302
    reversal = LedgerEntry.objects.get(reverses=invoice)
    assert (reversal.amount, reversal.recorded_by, reversal.reason) == (
        Decimal("-2.0000"), funded_campaign.staff, "Invoice 12 was paid by the client",
    )
    again = staff_client.post(reverse_url, {"reason": "again"})
    assert again.status_code == 400 and "cannot be reversed twice" in again.content.decode()
    ledger_html = staff_client.get(url("ledger", campaign) + "?category=contractor").content.decode()
    assert f"reversed by #{reversal.pk}" in ledger_html and f"(reverses #{invoice.pk})" in ledger_html


def test_earnings_csv_for_payroll(staff_client, funded_campaign):
    response = staff_client.get(url("earnings_csv", funded_campaign.campaign))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert f'filename="{funded_campaign.campaign.name}-earnings.csv"' in response["Content-Disposition"]
    rows = {row["username"]: row for row in csv_rows(response)}
    assert set(rows) == {"fast", "slow"}  # the holder has submitted nothing yet
    assert (rows["slow"]["items"], rows["slow"]["earned"], rows["slow"]["effective_hourly"], rows["slow"]["underpaid"]) == (
        "2", "0.2000", "6.00", "True",
    )
    assert (rows["fast"]["seconds_on_page"], rows["fast"]["earned"], rows["fast"]["effective_hourly"]) == (
        "30", "0.3000", "36.00",
    )


def test_ledger_csv_has_every_entry_and_sums_to_the_spent_figure(staff_client, funded_campaign):
    rows = csv_rows(staff_client.get(url("ledger_csv", funded_campaign.campaign)))
    assert len(rows) == LedgerEntry.objects.count() == 12
    assert sum(Decimal(row["amount"]) for row in rows) == Decimal("3.55")
    [gpu] = [row for row in rows if row["category"] == "gpu"]
    assert (gpu["quantity"], gpu["unit"], gpu["device_type"], gpu["task_ref"], gpu["round"]) == (
        "1800.0000", "gpu_seconds", "H100", "task-1", "1",
    )
    [invoice] = [row for row in rows if row["category"] == "contractor"]
    assert invoice["reason"].startswith("'=HYPERLINK")  # a spreadsheet will not run it
    assert invoice["recorded_by"] == funded_campaign.staff.username


def test_csv_exports_refuse_post(staff_client, funded_campaign):
    assert staff_client.post(url("ledger_csv", funded_campaign.campaign)).status_code == 405


def test_login_page_then_budget_page(client, funded_campaign):
    """The redirect for anonymous visitors leads back to the page after a staff login."""
    target = url("campaign", funded_campaign.campaign)
    login = client.post(
        reverse("login") + f"?next={target}",
        {"username": funded_campaign.staff.username, "password": PASSWORD, "next": target},
    )
    assert login.status_code == 302 and login.url == target
