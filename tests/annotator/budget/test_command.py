"""`manage.py budget`: the summary in the terminal."""

import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from annotator.models import Campaign
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db


def run(**options) -> str:
    out = io.StringIO()
    call_command("budget", stdout=out, no_color=True, **options)
    return out.getvalue()


def test_prints_one_campaigns_summary(funded_campaign):
    output = run(campaign=funded_campaign.campaign.name)
    assert "budget 10.00 USD   spent 3.55   reserved 0.11   remaining 6.34" in output
    assert "GPU       budget 2.00 h   used 0.50 h   remaining 1.50 h   cost 1.00 USD" in output
    assert "5 judged, 3 useful   labeling cost per item 0.1100   per useful item 0.1833" in output
    assert "the money lasts 57 more items" in output
    assert "round 1" in output and "no round" in output
    slow = next(line for line in output.splitlines() if line.strip().startswith("slow"))
    assert "earned       0.20" in slow and "6.00 USD/h  UNDERPAID" in slow


def test_prints_every_campaign_without_a_name(funded_campaign):
    idle = CampaignFactory(money_budget=None)
    output = run()
    assert funded_campaign.campaign.name in output and idle.name in output
    assert "budget no cap" in output and "nothing spent in the last 7 days" in output


def test_unknown_campaign_is_an_error(db):
    with pytest.raises(CommandError, match="No campaign named 'nope'"):
        run(campaign="nope")


def test_verify_re_adds_the_memoised_ledger_sums(funded_campaign):
    campaign = funded_campaign.campaign
    # The last claim folded the five judgements' charges (pay and fee) into the memo; GPU and invoice came later.
    assert run(verify=True, campaign=campaign.name).startswith(
        f"ok     {campaign.name}: memo 0.5500 over 10 entries up to id"
    )
    Campaign.objects.filter(pk=campaign.pk).update(ledger_prefix_sum=Decimal("0.5600"))
    with pytest.raises(CommandError, match=f"memoised ledger sum is wrong for: {campaign.name}"):
        run(verify=True)
