"""With no broker the steps run in the process that starts them: round 0 of a tiny campaign, end to end."""

import pytest

from annotator.models import (
    Campaign,
    Comparison,
    ComparisonPurpose,
    Completion,
    LedgerCategory,
    LedgerEntry,
    PolicyCheckpoint,
    RoundState,
)
from annotator.rounds.state_machine import round_start

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def test_round_zero_runs_in_process_and_publishes_random_pairs(tiny_campaign, artifact_dir, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # eager tasks run here, each sending the next
        round_ = round_start(campaign=tiny_campaign)
    round_.refresh_from_db()
    assert round_.state == RoundState.LABELING, round_.error
    assert round_.metrics["steps"]["sampling"]["status"] == "done"
    assert round_.metrics["steps"]["selecting"]["status"] == "done"

    base = PolicyCheckpoint.objects.get(campaign=tiny_campaign)
    assert (base.label, base.round_id, base.kl_from_base) == ("base", round_.pk, 0.0)
    assert "eval/gold_reward" in base.metrics
    settings = tiny_campaign.settings
    train = Completion.objects.filter(checkpoint=base, prompt__split="train")
    assert train.count() == settings["prompts_per_round"] * settings["completions_per_prompt"]
    assert not train.filter(gold_score__isnull=True).exists()

    comparisons = Comparison.objects.filter(round=round_)
    assert 0 < comparisons.count() <= settings["pairs_per_round"]
    assert set(comparisons.values_list("purpose", flat=True)) <= {ComparisonPurpose.TRAIN, ComparisonPurpose.GOLD}
    for comparison in comparisons:
        assert comparison.completion_a.prompt_id == comparison.completion_b.prompt_id == comparison.prompt_id
        assert comparison.is_open and comparison.judgements_wanted == tiny_campaign.overlap
    # Sampling ran a model (charged); round 0's random pairing did not.
    gpu = LedgerEntry.objects.filter(campaign=tiny_campaign, category=LedgerCategory.GPU)
    assert list(gpu.values_list("reason", flat=True)) == ["GPU step: sampling"]


def test_a_campaign_without_a_gold_labeler_gets_no_gold_pairs(tiny_campaign, artifact_dir,
                                                               django_capture_on_commit_callbacks):
    # None is the default: VADER's answers are sentiment answers, wrong for any other campaign's honeypots.
    assert Campaign._meta.get_field("gold_labeler").get_default() == ""
    tiny_campaign.gold_labeler = ""
    tiny_campaign.save(update_fields=["gold_labeler"])
    with django_capture_on_commit_callbacks(execute=True):
        round_ = round_start(campaign=tiny_campaign)
    round_.refresh_from_db()
    assert round_.state == RoundState.LABELING, round_.error
    comparisons = Comparison.objects.filter(round=round_)
    assert comparisons.exists() and not comparisons.filter(purpose=ComparisonPurpose.GOLD).exists()
    assert not Completion.objects.filter(prompt__campaign=tiny_campaign, gold_score__isnull=False).exists()
