"""What the round loop does with each kind of campaign before any model runs: what a rating campaign refuses,
which labels its rating model learns from, and an unconditional campaign's empty prompt slots."""

import pytest
from django.template.loader import render_to_string
from django.utils import timezone

from annotator.core.errors import InvalidInput
from annotator.models import (
    AssignmentStatus,
    ComparisonPurpose,
    Prompt,
    PromptSplit,
    Rating,
    Round,
    RoundState,
)
from annotator.rounds.settings import round_settings
from annotator.rounds.state_machine import round_start
from annotator.rounds.step_reward_model import rating_examples_export
from annotator.rounds.unconditional import unconditional_prompts_ensure
from annotator.selectors.labeling import LabelingItem
from tests.factories import AssignmentFactory, CampaignFactory, ComparisonFactory, PromptFactory, RatingItemFactory

pytestmark = pytest.mark.django_db


def start(campaign, django_capture_on_commit_callbacks) -> Round:
    """round_start without running the enqueued task."""
    with django_capture_on_commit_callbacks(execute=False):
        round_ = round_start(campaign=campaign)
    round_.refresh_from_db()
    return round_


@pytest.mark.parametrize("fields, says", [
    ({"policy_optimizer": "dpo"}, "DPO learns from preference pairs"),
    ({"acquisition_strategy": "thompson"}, "Thompson sampling chooses between two"),
])
def test_a_rating_campaign_refuses_what_needs_pairs_before_a_round_starts(fields, says, django_capture_on_commit_callbacks):
    campaign = CampaignFactory(task_kind="rating", **fields)
    PromptFactory.create_batch(2, campaign=campaign)
    with pytest.raises(InvalidInput, match=says):
        start(campaign, django_capture_on_commit_callbacks)
    assert not Round.objects.filter(campaign=campaign).exists()
    # The same optimiser on a pairwise campaign starts.
    pairwise = CampaignFactory(task_kind="pairwise", **fields)
    PromptFactory.create_batch(2, campaign=pairwise)
    assert start(pairwise, django_capture_on_commit_callbacks).state == RoundState.SAMPLING


def rated(campaign, value: str, *, purpose=ComparisonPurpose.TRAIN, round_=None) -> Rating:
    item = RatingItemFactory(campaign=campaign, purpose=purpose, round=round_)
    assignment = AssignmentFactory(comparison=item, status=AssignmentStatus.SUBMITTED, submitted_at=timezone.now())
    return Rating.objects.create(assignment=assignment, value=value, milliseconds=900)


def test_a_rating_model_learns_from_earlier_rounds_ratings_and_holds_out_the_controls():
    campaign = CampaignFactory(task_kind="rating")
    zero = Round.objects.create(campaign=campaign, number=0, state=RoundState.DONE)
    one = Round.objects.create(campaign=campaign, number=1, state=RoundState.TRAINING_REWARD)
    train = [rated(campaign, "positive", round_=zero), rated(campaign, "negative", purpose=ComparisonPurpose.GOLD, round_=zero)]
    control = rated(campaign, "neutral", purpose=ComparisonPurpose.CONTROL, round_=zero)
    rated(campaign, "positive", round_=one)  # this round's own: not yet
    rated(campaign, "negative", purpose=ComparisonPurpose.EVALUATION)  # a blind evaluation's: never
    ComparisonFactory(campaign=campaign, round=zero)  # a pair in a rating campaign is not a rating

    export = rating_examples_export(round_=one)
    assert export.ratings == 3
    assert [(e.text, e.value) for e in export.train] == [
        (r.assignment.comparison.completion_a.text, r.value) for r in train]
    assert [(e.prompt, e.text, e.value) for e in export.heldout] == [
        (control.assignment.comparison.prompt.text, control.assignment.comparison.completion_a.text, "neutral")]


def test_an_unconditional_campaign_starts_without_prompts_and_gets_empty_slots_once(django_capture_on_commit_callbacks):
    campaign = CampaignFactory(unconditional=True, settings={"train_prompts": 5, "heldout_prompts": 2})
    round_ = start(campaign, django_capture_on_commit_callbacks)
    assert round_.state == RoundState.SAMPLING
    prompts = Prompt.objects.filter(campaign=campaign)
    assert set(prompts.values_list("text", flat=True)) == {""}
    assert prompts.filter(split=PromptSplit.TRAIN).count() == 5 and prompts.filter(split=PromptSplit.HELDOUT).count() == 2
    assert unconditional_prompts_ensure(campaign=campaign) == 0  # a rerun adds nothing
    assert prompts.count() == 7
    # Raising the sizes tops the slots up.
    campaign.settings = {"train_prompts": 6, "heldout_prompts": 2}
    campaign.save(update_fields=["settings"])
    assert unconditional_prompts_ensure(campaign=campaign) == 1
    assert prompts.filter(split=PromptSplit.TRAIN).count() == round_settings(campaign=campaign).train_prompts == 6


def test_an_unconditional_campaign_with_prompt_texts_is_refused(django_capture_on_commit_callbacks):
    campaign = CampaignFactory(unconditional=True)
    PromptFactory(campaign=campaign, text="Now is the winter")
    with pytest.raises(InvalidInput, match="is unconditional .* has 1 prompts with text"):
        start(campaign, django_capture_on_commit_callbacks)
    assert not Round.objects.filter(campaign=campaign).exists()
    assert Prompt.objects.filter(campaign=campaign).count() == 1


def test_a_campaign_with_prompts_still_needs_them(django_capture_on_commit_callbacks):
    with pytest.raises(InvalidInput, match="has no train prompts"):
        start(CampaignFactory(), django_capture_on_commit_callbacks)


@pytest.mark.parametrize("prompt, shown", [("Now is the winter", True), ("", False)])
def test_the_labeling_page_shows_no_prompt_box_for_an_empty_prompt(prompt, shown):
    campaign = CampaignFactory()
    for item in (LabelingItem(assignment_id=7, prompt=prompt, left=" of our discontent", right=None, is_rating=True),
                 LabelingItem(assignment_id=8, prompt=prompt, left=" of our", right=" discontent", is_rating=False)):
        html = render_to_string("partials/labeling_item.html", {"item": item, "campaign": campaign})
        assert ('aria-label="Prompt"' in html) is shown
        assert (prompt in html) if shown else " of our" in html
