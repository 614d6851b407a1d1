"""A new team, in a real browser, from nothing to labels: staff create a campaign from the set-up pages with the tiny
test model and an uploaded prompt file, start round 0, invite a labeler who follows the link, sets a password and
labels by keyboard; simulated labelers answer the rest, and round 1 trains on those labels and publishes new pairs.
The manager of another campaign is refused its pages."""

import time

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from annotator.models import (
    Assignment,
    Campaign,
    CampaignMembership,
    CampaignRole,
    Judgement,
    Prompt,
    PromptSplit,
    Round,
    RoundState,
)
from annotator.simulation.run import simulate_labelers_run
from tests.browser.conftest import login
from tests.factories import PASSWORD, CampaignFactory, StaffFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PROMPTS = [
    "The king rode out at dawn and", "My lady, the garden is", "Tell me, good friend, why",
    "The storm upon the sea was", "Love is a thing that", "In the tavern the soldiers",
    "Speak softly, for the night", "The letter from Verona said", "A crown of gold upon",
    "When the bells of the city", "Her father swore that he", "Upon the hill the shepherd",
    "The players came to court and", "Sweet music in the hall",
]
ROUND_SIZES = {
    "prompts_per_round": 6, "completions_per_prompt": 2, "contrast_per_prompt": 1, "pairs_per_round": 6,
    "max_pairs_per_prompt": 1, "eval_samples_per_prompt": 1, "heldout_prompts": 3, "reward_ensemble_size": 2,
    "gold_share": 0, "random_share": 0.2,
}
TRAINING = {
    "sampling": '{"max_new_tokens": 8}',
    "reward_model": '{"epochs": 2, "batch_size": 8, "max_length": 48}',
    "policy": '{"max_steps": 4, "batch_size": 8, "num_generations": 4, "max_new_tokens": 8, '
              '"reward_norm_samples": 16, "kl_levels": [0.5]}',
}
ROUND_SECONDS = 240


def wait_for_round(campaign: Campaign, number: int, state: str) -> Round:
    """The round once it reaches `state` (the round runs in the live server's thread: tasks run in-process)."""
    deadline = time.monotonic() + ROUND_SECONDS
    while time.monotonic() < deadline:
        round_ = Round.objects.filter(campaign=campaign, number=number).first()
        if round_ is not None and round_.state == state:
            return round_
        assert round_ is None or round_.state != RoundState.FAILED, round_.error
        time.sleep(0.5)
    raise AssertionError(f"round {number} did not reach {state} in {ROUND_SECONDS} s")


def test_a_new_team_sets_up_invites_labels_and_runs_rounds(
    browser, live_server, word_policy_dir, tmp_path, settings, console_errors
):
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    staff = StaffFactory()
    team = browser.new_context()
    page = team.new_page()
    page.on("pageerror", lambda exc: console_errors.append(f"pageerror: {exc}"))
    login(page, live_server, staff.username, PASSWORD)

    # The campaign, from the set-up form: Markdown instructions, the tiny model, small rounds.
    page.goto(live_server.url + reverse("setup:new"))
    page.fill("[name=name]", "team-poems")
    page.fill("[name=title]", "Our poems")
    page.fill("[name=instructions]", "Pick the **better** line.\n\n<script>alert(1)</script>")
    page.fill("[name=base_model_path]", str(word_policy_dir))
    page.fill("[name=pay_per_judgement]", "0.05")
    page.fill("[name=money_budget]", "20")
    for field, value in ROUND_SIZES.items():
        page.fill(f"[name={field}]", str(value))
    for field, value in TRAINING.items():
        page.fill(f"[name={field}]", value)
    expect(page.locator("#cost-preview")).to_contain_text("0.30")  # 6 pairs x overlap 1 x 0.05, before saving
    page.click("button[type=submit]:has-text('Create campaign')")
    expect(page).to_have_url(live_server.url + reverse("setup:prompts", args=["team-poems"]))
    campaign = Campaign.objects.get(name="team-poems")
    assert campaign.base_model_path == str(word_policy_dir) and campaign.settings["pairs_per_round"] == 6

    # Prompts from a file, a quarter held out; a duplicate line is skipped and said so.
    prompt_file = tmp_path / "prompts.txt"
    prompt_file.write_text("\n".join(PROMPTS + [PROMPTS[0]]) + "\n", encoding="utf-8")
    page.set_input_files("#id_file", str(prompt_file))
    page.fill("#id_file_fraction", "0.25")
    page.click("form:has(#id_file) button[type=submit]")
    expect(page.locator("body")).to_contain_text("duplicate")
    assert Prompt.objects.filter(campaign=campaign).count() == len(PROMPTS)
    assert Prompt.objects.filter(campaign=campaign, split=PromptSplit.HELDOUT).count() >= 3

    # Round 0 from the rounds page: the base model's pairs.
    page.goto(live_server.url + reverse("rounds:campaign", args=["team-poems"]))
    page.click("#start-round")
    round_zero = wait_for_round(campaign, 0, RoundState.LABELING)
    assert round_zero.comparisons.count() == 6

    # An invitation link for a labeler.
    page.goto(live_server.url + reverse("members:campaign", args=["team-poems"]))
    page.select_option("[name=role]", CampaignRole.LABELER)
    page.click("button:has-text('Create an invitation link')")
    link = page.locator("#new-link-url").input_value()
    assert "/accounts/invite/" in link

    # The labeler follows it in a browser of their own, sets a password and lands on the instructions.
    labeler_context = browser.new_context()
    labeler_page = labeler_context.new_page()
    labeler_page.on("pageerror", lambda exc: console_errors.append(f"pageerror: {exc}"))
    labeler_page.goto(link)
    labeler_page.fill("[name=username]", "new-labeler")
    labeler_page.fill("[name=password1]", "a long new passphrase")
    labeler_page.fill("[name=password2]", "a long new passphrase")
    labeler_page.click("button:has-text('Create my account and join')")
    expect(labeler_page).to_have_url(live_server.url + reverse("labeling:instructions", args=["team-poems"]))
    expect(labeler_page.locator("strong", has_text="better")).to_be_visible()
    assert "<script>alert(1)" not in labeler_page.content()
    # A used link does not work twice.
    used = labeler_context.new_page().goto(link)
    assert used.status == 410

    # Labels by keyboard: Enter starts, 1 picks the left text, Enter sends. The page holds the item shown and the
    # next one; simulated labelers answer the others through the same API meanwhile.
    def label_by_keyboard(items: int) -> None:
        for _ in range(items):
            form = labeler_page.locator("form.answer-form")
            expect(form).to_be_visible()
            item = form.get_attribute("data-item")
            labeler_page.keyboard.press("1")
            labeler_page.keyboard.press("Enter")
            expect(labeler_page.locator(f"form.answer-form[data-item='{item}']")).to_have_count(0)

    labeler_page.keyboard.press("Enter")
    label_by_keyboard(2)
    report = simulate_labelers_run(base_url=live_server.url, campaign="team-poems", gold="vader", labelers=2)
    assert report.submitted == 2 and report.errors == 0, report
    label_by_keyboard(2)
    expect(labeler_page.locator("body")).to_contain_text("nothing left for you")
    assert Judgement.objects.filter(assignment__labeler__username="new-labeler").count() == 4
    assert Assignment.objects.filter(comparison__round=round_zero, status="submitted").count() == 6

    # Round 1 trains on every answer and publishes pairs of the new policy.
    page.goto(live_server.url + reverse("rounds:campaign", args=["team-poems"]))
    page.click("#start-round")
    round_one = wait_for_round(campaign, 1, RoundState.LABELING)
    assert round_one.metrics["training_reward"]["data/judgements"] == 6
    assert round_one.comparisons.count() > 0

    # The manager of another campaign sees their own and is refused this one's pages.
    manager = UserFactory()
    CampaignMembership.objects.create(campaign=CampaignFactory(), user=manager, role=CampaignRole.MANAGER)
    outsider = browser.new_context().new_page()
    login(outsider, live_server, manager.username, PASSWORD)
    for url in (reverse("rounds:campaign", args=["team-poems"]), reverse("setup:edit", args=["team-poems"]),
                reverse("members:campaign", args=["team-poems"]), reverse("budget:campaign", args=["team-poems"])):
        assert outsider.goto(live_server.url + url).status == 403, url

    assert console_errors == []
