"""A blind evaluation in a real browser: staff start it with the form, simulated labelers answer every item over
HTTP, staff refresh the leaderboard and read ratings, intervals and the recommended checkpoint; no script error."""

import shutil
from decimal import Decimal

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from annotator.models import (
    Campaign,
    EvaluationRun,
    EvaluationState,
    PolicyCheckpoint,
    Prompt,
    PromptSplit,
    Round,
    RoundState,
)
from annotator.simulation.run import simulate_labelers_run
from tests.browser.conftest import login
from tests.factories import PASSWORD, StaffFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_eval_campaign(word_policy_dir, tmp_path, settings):
    """Two real checkpoints (the same tiny weights in two folders), held-out prompts and VADER as gold."""
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    campaign = Campaign.objects.create(
        name="eval-browser", title="Evaluation in the browser", instructions="Pick the happier continuation.",
        overlap=1, pay_per_judgement=Decimal("0.10"), money_budget=Decimal("100.00"),
        base_model_path=str(word_policy_dir), gold_labeler="vader", settings={"sampling": {"max_new_tokens": 8}},
    )
    for index in range(4):
        Prompt.objects.create(campaign=campaign, text=f"Now is the winter number {index} of", split=PromptSplit.HELDOUT)
    round0 = Round.objects.create(campaign=campaign, number=0, state=RoundState.DONE)
    round1 = Round.objects.create(campaign=campaign, number=1, state=RoundState.DONE)
    PolicyCheckpoint.objects.create(campaign=campaign, round=round0, label="base", path=str(word_policy_dir),
                                    kl_from_base=0.0)
    final = tmp_path / "round-1-final"
    shutil.copytree(word_policy_dir, final)
    PolicyCheckpoint.objects.create(campaign=campaign, round=round1, label="final", path=str(final), kl_from_base=1.5)
    return campaign


def test_staff_run_a_blind_evaluation_and_read_the_leaderboard(page, live_server, console_errors,
                                                               browser_eval_campaign):
    campaign = browser_eval_campaign
    staff = StaffFactory()
    login(page, live_server, staff.username, PASSWORD)
    page.goto(live_server.url + reverse("rounds:campaign", args=[campaign.name]))
    page.click("#evaluation-link")
    expect(page.get_by_role("heading", name="Blind evaluation of Evaluation in the browser")).to_be_visible()
    expect(page.locator("input[name=checkpoints]:checked")).to_have_count(2)

    page.fill("#id_prompts", "3")
    page.fill("#id_ratings_per_checkpoint", "2")
    page.click("#check-cost")
    expect(page.locator("#plan")).to_contain_text("Answers wanted: 7 (1 per item)")
    assert not EvaluationRun.objects.exists()
    expect(page.locator("#id_prompts")).to_have_value("3")  # the form kept what was asked

    page.click("#start-evaluation")  # no broker: the sampling task runs in this request
    expect(page.locator(".messages")).to_contain_text("Evaluation 1 is labeling.", timeout=60_000)
    expect(page.locator("#run-1")).to_have_attribute("data-state", "labeling")
    expect(page.locator("#run-1")).to_contain_text("0 / 7")

    report = simulate_labelers_run(base_url=live_server.url, campaign=campaign.name, labelers=2, seed=3)
    assert report.submitted == 7 and report.errors == 0, report
    expect(page.locator("#run-1")).to_contain_text("7 / 7", timeout=10_000)  # the polled table caught up

    page.click("#refresh-leaderboard")
    expect(page.locator(".messages")).to_contain_text("Leaderboard from 7 answers (3 battles).", timeout=60_000)
    expect(page.locator("#run-1")).to_have_attribute("data-state", "done")
    assert EvaluationRun.objects.get().state == EvaluationState.DONE
    standings = page.locator("#standings tbody tr")
    expect(standings).to_have_count(2)
    # Raw and length-controlled ratings of both checkpoints, and the final's win rate against the base.
    expect(page.locator("#standings .interval")).to_have_count(5)
    expect(page.locator("#standings .badge", has_text="recommended")).to_have_count(1)
    recommended = page.locator("#recommended")
    expect(recommended).to_contain_text("has the highest evaluated rating")
    expect(recommended).to_contain_text("95 % interval")
    expect(page.locator("#blind-ratings tbody tr")).to_have_count(2)
    expect(page.locator("#blind-ratings .interval")).to_have_count(2)
    expect(page.locator("#overoptimization-sentence")).not_to_be_empty()
    expect(page.locator("#plot-win circle")).to_have_count(1)  # the final against the base
    expect(page.locator("#length-coefficient")).to_contain_text("Length coefficient")

    page.goto(live_server.url + reverse("rounds:campaign", args=[campaign.name]))
    expect(page.locator("#evaluation-summary .badge", has_text="recommended")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert console_errors == []
