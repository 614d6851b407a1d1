"""A campaign with two real checkpoints of a tiny word-level policy (the same weights in two folders, so sampling is
real and quick) and held-out prompts, for evaluation runs."""

import shutil
from decimal import Decimal

import pytest

from annotator.models import Campaign, PolicyCheckpoint, Prompt, PromptSplit, Round, RoundState


@pytest.fixture
def eval_campaign(db, word_policy_dir, tmp_path, settings):
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    campaign = Campaign.objects.create(
        name="eval-camp", title="Eval campaign", instructions="Pick the happier continuation.", overlap=1,
        pay_per_judgement=Decimal("0.10"), money_budget=Decimal("100.00"), base_model_path=str(word_policy_dir),
        gold_labeler="vader", settings={"sampling": {"max_new_tokens": 8}},
    )
    for index in range(6):
        Prompt.objects.create(campaign=campaign, text=f"Now is the winter number {index} of", split=PromptSplit.HELDOUT)
    Prompt.objects.create(campaign=campaign, text="A train prompt", split=PromptSplit.TRAIN)
    round0 = Round.objects.create(campaign=campaign, number=0, state=RoundState.DONE)
    round1 = Round.objects.create(campaign=campaign, number=1, state=RoundState.DONE)
    PolicyCheckpoint.objects.create(campaign=campaign, round=round0, label="base", path=str(word_policy_dir), kl_from_base=0.0)
    final = tmp_path / "round-1-final"
    shutil.copytree(word_policy_dir, final)
    PolicyCheckpoint.objects.create(campaign=campaign, round=round1, label="final", path=str(final), kl_from_base=1.5)
    return campaign
