"""A campaign's prompts are always chosen: the plays' openings by command, and no round without prompts."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from annotator.core.errors import InvalidInput
from annotator.models import Prompt, PromptSplit, Round
from annotator.rounds.state_machine import round_start
from annotator.services.prompts import PLAYS_SOURCE, campaign_prompts_from_plays
from tests.factories import CampaignFactory, PromptFactory

pytestmark = pytest.mark.django_db


def test_a_campaign_without_train_prompts_cannot_start_a_round():
    campaign = CampaignFactory()
    PromptFactory(campaign=campaign, split=PromptSplit.HELDOUT)  # held-out prompts alone give nothing to train on
    with pytest.raises(InvalidInput, match=f"has no train prompts.*campaign_prompts --campaign {campaign.name} --plays"):
        round_start(campaign=campaign)
    assert not Round.objects.filter(campaign=campaign).exists()
    assert list(Prompt.objects.filter(campaign=campaign).values_list("split", flat=True)) == [PromptSplit.HELDOUT]


def test_run_round_says_what_to_do_about_missing_prompts():
    campaign = CampaignFactory()
    with pytest.raises(CommandError, match="no train prompts"):
        call_command("run_round", campaign=campaign.name, stdout=StringIO())


def test_the_plays_prompts_follow_the_campaign_settings_and_are_added_once():
    campaign = CampaignFactory(settings={"train_prompts": 12, "heldout_prompts": 5, "seed": 3})
    out = StringIO()
    call_command("campaign_prompts", campaign=campaign.name, plays=True, stdout=out)
    assert "Added 17 prompts from the plays" in out.getvalue() and "12 train, 5 held out" in out.getvalue()
    prompts = Prompt.objects.filter(campaign=campaign)
    assert set(prompts.values_list("source", flat=True)) == {PLAYS_SOURCE}
    assert (prompts.filter(split=PromptSplit.TRAIN).count(), prompts.filter(split=PromptSplit.HELDOUT).count()) == (12, 5)
    assert len(set(prompts.values_list("text", flat=True))) == 17  # no prompt is both trained on and held out

    other = CampaignFactory()  # the same seed draws the same openings
    campaign_prompts_from_plays(campaign=other, train=12, heldout=5, seed=3)
    assert sorted(other.prompts.values_list("text", "split")) == sorted(prompts.values_list("text", "split"))

    with pytest.raises(CommandError, match="already has 17 prompts"):
        call_command("campaign_prompts", campaign=campaign.name, plays=True, train=3, stdout=StringIO())
    assert prompts.count() == 17


def test_campaign_prompts_refuses_bad_input_with_a_clear_message():
    campaign = CampaignFactory()
    with pytest.raises(CommandError, match="No campaign 'nope'"):
        call_command("campaign_prompts", campaign="nope", plays=True)
    with pytest.raises(CommandError, match="Say where the prompts come from"):
        call_command("campaign_prompts", campaign=campaign.name)
    with pytest.raises(CommandError, match="at least 1 train prompt"):
        call_command("campaign_prompts", campaign=campaign.name, plays=True, train=0)
    with pytest.raises(CommandError, match="at least 1 train prompt"):
        call_command("campaign_prompts", campaign=campaign.name, plays=True, heldout=-1)
    assert not Prompt.objects.filter(campaign=campaign).exists()
