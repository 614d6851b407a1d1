"""`run_round --dry-run`: the estimate and the budget check, refusing clearly and changing nothing; `--final`'s checks."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from annotator.models import LedgerEntry, Round
from annotator.services.budget import gpu_usage_charge
from tests.factories import CampaignFactory, PromptFactory

pytestmark = pytest.mark.django_db


def campaign_with_history(**fields):
    """A campaign whose earlier round-0 sampling took an hour of GPU time (the estimate comes from it)."""
    from models_rl.device import device_name

    campaign = CampaignFactory(pay_per_judgement=Decimal("0.10"), overlap=2, settings={"pairs_per_round": 10}, **fields)
    PromptFactory.create_batch(2, campaign=campaign)
    gpu_usage_charge(campaign=campaign, step="sampling", task_ref="earlier-run", device_type=device_name(),
                     gpu_seconds=Decimal(3600))
    return campaign


def dry_run(campaign) -> str:
    out = StringIO()
    call_command("run_round", campaign=campaign.name, dry_run=True, stdout=out)
    return out.getvalue()


def snapshot(campaign):
    return Round.objects.filter(campaign=campaign).count(), LedgerEntry.objects.filter(campaign=campaign).count()


def test_dry_run_within_budget_prints_the_estimate():
    campaign = campaign_with_history(gpu_hour_budget=Decimal("5"), money_budget=Decimal("100"))
    before = snapshot(campaign)
    output = dry_run(campaign)
    assert "Round 0" in output and "10 pairs x overlap 2 = 20 judgements, 2.0000" in output
    assert "3600.0000 s" in output and "The budgets cover this round." in output
    assert snapshot(campaign) == before


def test_dry_run_refuses_when_gpu_hours_cannot_cover_the_round():
    campaign = campaign_with_history(gpu_hour_budget=Decimal("1.5"))
    before = snapshot(campaign)
    with pytest.raises(CommandError, match=r"(?s)Refused: the budget cannot cover this round.*GPU step 'sampling'.*GPU budget"):
        dry_run(campaign)
    assert snapshot(campaign) == before


def test_dry_run_refuses_when_money_cannot_pay_for_the_labels():
    campaign = campaign_with_history(money_budget=Decimal("5.00"))  # 2.00 of GPU spent, labels cost 2.00 + GPU 2.00
    before = snapshot(campaign)
    with pytest.raises(CommandError, match=r"20 judgements costs 2.0000 USD .* only 3.0000 of 5.0000 USD is left"):
        dry_run(campaign)
    assert snapshot(campaign) == before


def test_unknown_campaign_is_a_clear_error():
    with pytest.raises(CommandError, match="No campaign 'nope'"):
        call_command("run_round", campaign="nope", dry_run=True, stdout=StringIO())


def test_a_final_round_estimate_has_no_labeling_and_final_runs_one_round():
    campaign = campaign_with_history(gpu_hour_budget=Decimal("5"), money_budget=Decimal("100"))
    Round.objects.create(campaign=campaign, number=0, state="done")
    out = StringIO()
    call_command("run_round", campaign=campaign.name, dry_run=True, final=True, stdout=out)
    assert "steps        training_reward, optimizing, sampling" in out.getvalue()
    assert "0 pairs x overlap 2 = 0 judgements" in out.getvalue()
    with pytest.raises(CommandError, match="--final runs one round"):
        call_command("run_round", campaign=campaign.name, final=True, rounds=2, stdout=StringIO())
