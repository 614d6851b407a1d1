"""`manage.py evaluate`: dry run, a run that resumes rather than repeats, the leaderboard as text, CSV and JSON."""

import csv
import io
import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from annotator.models import Comparison, EvaluationRun, EvaluationState
from tests.annotator.evaluation.test_leaderboard import _answer_all

pytestmark = pytest.mark.django_db(transaction=True)  # the sampling task runs on commit, in this process


def _call(*args, **kwargs) -> str:
    out = io.StringIO()
    call_command("evaluate", *args, stdout=out, stderr=io.StringIO(), **kwargs)
    return out.getvalue()


def test_dry_run_prints_the_figures_and_changes_nothing(eval_campaign):
    out = _call(campaign=eval_campaign.name, prompts=3, ratings=2, dry_run=True)
    assert "Checkpoints (2): base, round 1" in out and "Battles: 1 pair x 3 prompts = 3" in out
    assert "Answers wanted: 7" in out and "0.7000 USD" in out
    assert not EvaluationRun.objects.exists()


def test_bad_input_is_a_command_error(eval_campaign):
    with pytest.raises(CommandError, match="no checkpoint 'round 9'"):
        _call(campaign=eval_campaign.name, checkpoints="base,round 9")
    with pytest.raises(CommandError, match="at least two"):
        _call(campaign=eval_campaign.name, checkpoints="base")
    eval_campaign.money_budget = Decimal("0.20")
    eval_campaign.save()
    with pytest.raises(CommandError, match=r"costs 0\.7000 USD"):
        _call(campaign=eval_campaign.name, prompts=3, ratings=2)
    with pytest.raises(CommandError, match="no evaluation answers yet"):
        _call(campaign=eval_campaign.name, show=True)
    assert not EvaluationRun.objects.exists()


def test_a_run_is_started_once_followed_on_rerun_and_ranked(eval_campaign):
    out = _call(campaign=eval_campaign.name, prompts=3, ratings=2, checkpoints="base,round 1")
    assert "Evaluation 1 started." in out and "3 battles and 4 blind ratings published" in out
    assert "7 answers to go" in out
    again = _call(campaign=eval_campaign.name, prompts=3, ratings=2)
    assert "Evaluation 1 of 'eval-camp' is labeling: following it" in again
    assert EvaluationRun.objects.count() == 1 and Comparison.objects.count() == 7

    _answer_all(eval_campaign, lambda first, second: "first" if len(first) >= len(second) else "second",
                rate=lambda text: "positive")
    table = _call(campaign=eval_campaign.name, show=True)
    assert "Leaderboard: 3 battles, 7 evaluation answers" in table and "half a win" in table
    assert "base" in table and "round 1" in table and "Over-optimisation:" in table
    assert EvaluationRun.objects.get().state == EvaluationState.DONE  # the refresh closed the answered run
    rows = list(csv.reader(io.StringIO(_call(campaign=eval_campaign.name, show=True, format="csv"))))
    assert len(rows) >= 3 and "rating" in ",".join(rows[0])
    data = json.loads(_call(campaign=eval_campaign.name, show=True, format="json"))
    assert data["answers"] == 7 and {row["name"] for row in data["standings"]} == {"base", "round 1"}
