from io import StringIO

from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.db import connection

from annotator.models import Campaign, CampaignMembership, CampaignRole, Comparison, Completion, LabelerProfile, Prompt
from annotator.demo.seed import (
    DEMO_COMPARISON_COUNT,
    DEMO_LABELERS,
    DEMO_ROUND_SETTINGS,
    DEMO_STAFF,
    demo_fragment_pairs,
)
from annotator.rounds.settings import round_settings
from annotator.services.prompts import PLAYS_SOURCE


def run_demo() -> str:
    out = StringIO()
    call_command("demo", "--seed-only", stdout=out)
    return out.getvalue()


def test_demo_runs_twice_without_duplicates_and_prints_how_to_log_in(db):
    first = run_demo()
    second = run_demo()
    says_which = first.splitlines()[0]  # which database it uses: the machine's or the embedded PostgreSQL
    assert says_which.startswith("Database: ") and "PostgreSQL" in says_which, says_which
    assert f"database {connection.settings_dict['NAME']!r}" in says_which

    campaign = Campaign.objects.get(name="demo-sentiment")
    assert "more positive sentiment" in campaign.instructions
    assert (campaign.overlap, campaign.task_kind, str(campaign.money_budget), str(campaign.pay_per_judgement)) == (
        1, "pairwise", "120.0000", "0.0500",
    )
    assert campaign.settings == DEMO_ROUND_SETTINGS
    assert Campaign.objects.count() == 1
    assert Comparison.objects.filter(campaign=campaign, judgements_wanted=1).count() == DEMO_COMPARISON_COUNT
    # The rounds' prompts are the plays' openings, added with the campaign (none is added silently later); the
    # fragments' prompts come with their comparisons.
    sizes = round_settings(campaign=campaign)
    assert Prompt.objects.filter(source=PLAYS_SOURCE, split="train").count() == sizes.train_prompts
    assert Prompt.objects.filter(source=PLAYS_SOURCE, split="heldout").count() == sizes.heldout_prompts
    assert Prompt.objects.exclude(source=PLAYS_SOURCE).count() == DEMO_COMPARISON_COUNT
    assert Completion.objects.count() == 2 * DEMO_COMPARISON_COUNT
    assert get_user_model().objects.count() == 1 + len(DEMO_LABELERS)
    assert LabelerProfile.objects.count() == len(DEMO_LABELERS)
    # The labelers are the demo campaign's (only members see a campaign), once each however often it runs.
    assert sorted(CampaignMembership.objects.filter(campaign=campaign, role=CampaignRole.LABELER)
                  .values_list("user__username", flat=True)) == sorted(a.username for a in DEMO_LABELERS)

    for account in (DEMO_STAFF, *DEMO_LABELERS):
        assert authenticate(username=account.username, password=account.password) is not None
        assert f"{account.username}" in first and account.password in first
    assert get_user_model().objects.get(username=DEMO_STAFF.username).is_staff
    for text in ("http://127.0.0.1:8000/", "python manage.py runserver", f"{DEMO_COMPARISON_COUNT} new"):
        assert text in first
    assert "nothing new" in second


def test_demo_fragments_are_cut_from_shakespeare(db):
    pairs = demo_fragment_pairs(count=5)
    assert pairs == demo_fragment_pairs(count=5)  # the same every run
    for pair in pairs:
        assert pair.source.startswith("shakespeare:") and pair.source.split(":")[1].endswith("_gut.txt")
        assert len(pair.prompt.split()) == 4
        assert pair.completion_a.strip() and pair.completion_b.strip() and pair.completion_a != pair.completion_b
