"""The staff round pages: who may see them, the htmx partial, the plot, samples and the start button."""

import pytest
from django.test import Client
from django.urls import reverse

from annotator.models import (
    AssignmentStatus,
    ComparisonPurpose,
    Judgement,
    PolicyCheckpoint,
    PromptSplit,
    Round,
    RoundState,
)
from annotator.rounds.selectors import round_reward_model_accuracy
from tests.factories import (
    AssignmentFactory,
    CampaignFactory,
    ComparisonFactory,
    CompletionFactory,
    PromptFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign():
    campaign = CampaignFactory()
    PromptFactory.create_batch(3, campaign=campaign)
    return campaign


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def test_pages_are_for_staff_only(client, labeler, campaign):
    urls = [reverse("rounds:campaigns"), reverse("rounds:campaign", args=[campaign.name])]
    for url in urls:
        assert client.get(url).status_code == 302  # to the login page
    assert client.post(reverse("rounds:start", args=[campaign.name])).status_code == 302
    client.force_login(labeler)
    for url in urls:
        assert client.get(url).status_code == 403
    assert client.post(reverse("rounds:start", args=[campaign.name])).status_code == 403
    assert not Round.objects.exists()


def test_campaign_page_lists_rounds_with_their_steps(staff_client, campaign):
    Round.objects.create(campaign=campaign, number=0, state=RoundState.DONE,
                         metrics={"steps": {"sampling": {"status": "done", "seconds": 2.5}}})
    Round.objects.create(campaign=campaign, number=1, state=RoundState.OPTIMIZING, error="",
                         metrics={"steps": {"training_reward": {"status": "done"}}})
    page = staff_client.get(reverse("rounds:campaign", args=[campaign.name]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="round-1"' in html and 'id="round-0"' in html
    assert "step-queued" in html  # optimizing is dispatched but no worker has started it
    assert "every 2s" in html  # a round is running: the table polls
    assert "<html" in html


def test_htmx_request_gets_only_the_live_table(staff_client, campaign):
    Round.objects.create(campaign=campaign, number=0, state=RoundState.LABELING)
    partial = staff_client.get(reverse("rounds:campaign", args=[campaign.name]), HTTP_HX_REQUEST="true")
    html = partial.content.decode()
    assert partial.status_code == 200
    assert html.lstrip().startswith('<div id="round-table"') and "<html" not in html
    assert "every 2s" not in html  # nothing runs while labeling: no polling


def test_start_button_starts_round_zero(staff_client, campaign, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post(reverse("rounds:start", args=[campaign.name]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Round 0 is sampling" in response.content.decode()
    assert response["HX-Trigger"] == "round-started"
    assert len(callbacks) == 1  # the sampling task, sent after commit
    assert Round.objects.get(campaign=campaign).state == RoundState.SAMPLING


def test_final_round_button_starts_a_final_round(staff_client, campaign, django_capture_on_commit_callbacks):
    Round.objects.create(campaign=campaign, number=0, state=RoundState.DONE)
    page = staff_client.get(reverse("rounds:campaign", args=[campaign.name])).content.decode()
    assert 'id="start-final-round" name="final" value="1"' in page
    with django_capture_on_commit_callbacks(execute=False):
        response = staff_client.post(reverse("rounds:start", args=[campaign.name]), {"final": "1"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Final round 1 is training reward model" in response.content.decode()
    assert Round.objects.get(campaign=campaign, number=1).final
    table = staff_client.get(reverse("rounds:campaign", args=[campaign.name]), HTTP_HX_REQUEST="true").content.decode()
    assert "1</a> (final)" in table
    again = staff_client.post(reverse("rounds:start", args=[campaign.name]), HTTP_HX_REQUEST="true")
    assert again.status_code == 400 and "is a final round and has not finished" in again.content.decode()


def test_start_button_needs_csrf_and_post(staff, campaign):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    assert client.post(reverse("rounds:start", args=[campaign.name])).status_code == 403
    assert client.get(reverse("rounds:start", args=[campaign.name])).status_code == 405
    assert not Round.objects.exists()


def test_start_refused_while_labels_are_missing_is_a_400_with_the_reason(staff_client, campaign):
    round_ = Round.objects.create(campaign=campaign, number=0, state=RoundState.LABELING)
    comparison = ComparisonFactory(campaign=campaign, round=round_, judgements_wanted=2)
    AssignmentFactory(comparison=comparison, status=AssignmentStatus.SUBMITTED)
    response = staff_client.post(reverse("rounds:start", args=[campaign.name]), HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "1 of 2 judgements" in response.content.decode()
    plain = staff_client.post(reverse("rounds:start", args=[campaign.name]), follow=True)
    assert "still labeling" in plain.content.decode()
    assert Round.objects.filter(campaign=campaign).count() == 1


def test_plot_and_samples_side_by_side(staff_client, campaign):
    round0 = Round.objects.create(campaign=campaign, number=0, state=RoundState.DONE)
    round1 = Round.objects.create(campaign=campaign, number=1, state=RoundState.LABELING)
    base = PolicyCheckpoint.objects.create(campaign=campaign, round=round0, label="base", path="/m/base",
                                           kl_from_base=0.0, metrics={"eval/gold_reward": 0.05})
    final = PolicyCheckpoint.objects.create(campaign=campaign, round=round1, label="final", path="/m/final",
                                            kl_from_base=4.0, metrics={"eval/gold_reward": 0.4, "policy/reward": 1.2})
    prompt = PromptFactory(campaign=campaign, split=PromptSplit.HELDOUT, text="O happy dagger")
    CompletionFactory(prompt=prompt, checkpoint=base, text="this is thy sheath")
    CompletionFactory(prompt=prompt, checkpoint=final, text="joy and love and sweet delight")

    page = staff_client.get(reverse("rounds:campaign", args=[campaign.name])).content.decode()
    assert '<svg id="reward-kl-plot"' in page and page.count("<circle") == 2
    assert "http://" not in page.split('<svg id="reward-kl-plot"')[1].split("</svg>")[0].replace("http://www.w3.org", "")

    detail = staff_client.get(reverse("rounds:round", args=[campaign.name, 1]))
    html = detail.content.decode()
    assert detail.status_code == 200
    assert "O happy dagger" in html and "this is thy sheath" in html and "joy and love and sweet delight" in html
    assert "before: base" in html and "0.400" in html
    assert staff_client.get(reverse("rounds:round", args=[campaign.name, 7])).status_code == 404


def _judged_pair(campaign, round_, *, purpose, scores, choices):
    """A pair of the round whose completions the reward model scored `scores`, judged once per choice."""
    comparison = ComparisonFactory(campaign=campaign, round=round_, purpose=purpose, judgements_wanted=len(choices))
    for completion, score in zip((comparison.completion_a, comparison.completion_b), scores):
        completion.reward_score = score
        completion.save()
    for choice in choices:
        assignment = AssignmentFactory(comparison=comparison, status=AssignmentStatus.SUBMITTED)
        Judgement.objects.create(assignment=assignment, choice=choice, milliseconds=900)


def test_reward_model_accuracy_on_control_and_chosen_pairs(staff_client, campaign):
    """The round page shows how often labels agree with the reward model that chose the pairs, apart for the
    random control pairs and the acquired ones; ties, both-bad, equal and missing scores are left out."""
    round1 = Round.objects.create(campaign=campaign, number=1, state=RoundState.LABELING)
    _judged_pair(campaign, round1, purpose=ComparisonPurpose.CONTROL, scores=(1.0, 0.0), choices=["a", "a", "b", "tie"])
    _judged_pair(campaign, round1, purpose=ComparisonPurpose.TRAIN, scores=(0.2, 0.5), choices=["a", "a", "b"])
    _judged_pair(campaign, round1, purpose=ComparisonPurpose.TRAIN, scores=(0.3, 0.3), choices=["a"])  # no prediction
    _judged_pair(campaign, round1, purpose=ComparisonPurpose.TRAIN, scores=(None, 0.3), choices=["b"])  # unscored
    _judged_pair(campaign, round1, purpose=ComparisonPurpose.GOLD, scores=(0.9, 0.1), choices=["a", "both_bad"])

    accuracy = round_reward_model_accuracy(round_=round1)
    assert accuracy == {
        ComparisonPurpose.CONTROL: {"agreed": 2, "judged": 3, "accuracy": 2 / 3},
        ComparisonPurpose.TRAIN: {"agreed": 1, "judged": 3, "accuracy": 1 / 3},
    }
    html = staff_client.get(reverse("rounds:round", args=[campaign.name, 1])).content.decode()
    assert "random control pairs 0.667 (2 of 3)" in html and "pairs chosen by acquisition 0.333 (1 of 3)" in html

    round0 = Round.objects.create(campaign=campaign, number=0, state=RoundState.DONE)  # random pairs, no model
    assert round_reward_model_accuracy(round_=round0) == {}


def test_unknown_campaign_is_404(staff_client):
    assert staff_client.get(reverse("rounds:campaign", args=["nope"])).status_code == 404
    assert staff_client.post(reverse("rounds:start", args=["nope"])).status_code == 404
