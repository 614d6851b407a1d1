"""Rounds on the real parts: a Celery worker process on Redis and PostgreSQL, simulated labelers over HTTP
against the live test server, real models (the demo's shipped 1.1 M-parameter base; a tiny one for the crash
test). Afterwards the rows and the ledger must agree."""

import statistics
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count, Sum

from annotator.models import (
    AssignmentStatus,
    Comparison,
    Completion,
    Judgement,
    LedgerCategory,
    LedgerEntry,
    PolicyCheckpoint,
    PromptSplit,
    RewardModel,
    Round,
    RoundState,
)
from annotator.demo.seed import (
    DEMO_EVALUATION_PROMPTS,
    DEMO_NOISE,
    DEMO_ROUND_SETTINGS,
    DEMO_ROUNDS,
    DEMO_SIMULATED_LABELERS,
    demo_campaign_ensure,
)
from annotator.evaluation.selectors import leaderboard_latest
from annotator.rounds.state_machine import round_start
from tests.stats import welch_t
from tests.worker.round_settings import QUICK_ROUND_SETTINGS

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(900)]


def heldout_gold_scores(checkpoint: PolicyCheckpoint) -> list[float]:
    return list(
        Completion.objects.filter(checkpoint=checkpoint, prompt__split=PromptSplit.HELDOUT)
        .values_list("gold_score", flat=True)
    )


def assert_rows_and_ledger_agree(campaign) -> None:
    judgements = Judgement.objects.filter(assignment__comparison__campaign=campaign)
    labeling = LedgerEntry.objects.filter(campaign=campaign, category=LedgerCategory.LABELING)
    # Every judgement charged exactly once, and nothing else charged as labeling.
    assert labeling.count() == judgements.count() > 0
    assert set(labeling.values_list("assignment_id", flat=True)) == set(judgements.values_list("assignment_id", flat=True))
    assert not labeling.values("assignment").annotate(n=Count("pk")).filter(n__gt=1).exists()
    # The money cap held.
    spent = LedgerEntry.objects.filter(campaign=campaign).aggregate(s=Sum("amount"))["s"]
    assert spent <= campaign.money_budget
    # Every comparison got what it wanted, from different labelers, and no more.
    for comparison in Comparison.objects.filter(campaign=campaign):
        submitted = comparison.assignments.filter(status=AssignmentStatus.SUBMITTED)
        assert submitted.count() == comparison.judgements_wanted
    # Every checkpoint and reward model registered once (paths are unique per campaign), one GPU charge per step.
    checkpoints = PolicyCheckpoint.objects.filter(campaign=campaign)
    assert checkpoints.count() == len(set(checkpoints.values_list("path", flat=True)))
    gpu = LedgerEntry.objects.filter(campaign=campaign, category=LedgerCategory.GPU)
    assert gpu.count() == len(set(gpu.values_list("task_ref", flat=True)))


@pytest.fixture
def demo_recipe_campaign(db):
    """The demo's campaign as `make demo` sets it up: the shipped converged base, its round settings and prices."""
    return demo_campaign_ensure()


def test_the_demo_recipe_on_a_real_worker_beats_the_base_in_a_blind_evaluation(start_worker, demo_recipe_campaign,
                                                                                 live_server):
    """The demo's four labeling rounds (1,500 labels, the shipped base) with its noisy simulated labelers, then its
    final round on every label, but through a Celery worker process and the live server: rows and ledger agree,
    and the blind evaluation of the final round's policy against the base shows a margin noise does not make."""
    campaign = demo_recipe_campaign
    start_worker()
    out = StringIO()
    started = time.monotonic()
    call_command(
        "run_round", campaign=campaign.name, rounds=DEMO_ROUNDS, simulate="vader", base_url=live_server.url,
        labelers=DEMO_SIMULATED_LABELERS, noise=DEMO_NOISE, poll=0.3, stdout=out,
    )
    call_command("run_round", campaign=campaign.name, final=True, poll=0.3, stdout=out)
    output = out.getvalue()
    rounds = list(Round.objects.filter(campaign=campaign).order_by("number"))
    assert [(r.number, r.state, r.final) for r in rounds] == (
        [(n, RoundState.DONE, False) for n in range(DEMO_ROUNDS)] + [(DEMO_ROUNDS, RoundState.DONE, True)]), output
    assert_rows_and_ledger_agree(campaign)

    # Round 0 sampled from the base policy; every later round trained a reward model on every judgement
    # of the rounds before them (the final round: on all of them) and made exactly one final policy.
    judgements_before = [
        Judgement.objects.filter(assignment__comparison__round__number__lt=r.number,
                                 assignment__comparison__campaign=campaign).count()
        for r in rounds
    ]
    for round_ in rounds[1:]:
        training = round_.metrics["training_reward"]
        assert training["data/judgements"] == judgements_before[round_.number]
        # The pairs the summary reports are the ones the reward model trained and was measured on.
        assert training["data/train_pairs"] + training["data/heldout_pairs"] == (
            training["data/judgements"] - training["data/both_bad_skipped"])
        assert training["data/heldout_pairs"] == training["eval/pairs"] > 0
        assert RewardModel.objects.filter(round=round_).count() == 1
        assert PolicyCheckpoint.objects.filter(round=round_, label="final").count() == 1
        if round_.final:
            assert not Comparison.objects.filter(round=round_).exists() and "selecting" not in round_.metrics
        else:
            assert round_.metrics["selecting"]["pairs_published"] == Comparison.objects.filter(round=round_).count() > 0
    assert Comparison.objects.filter(round=rounds[-2], purpose="gold").exclude(gold_choice="").exists()
    gpu_steps = LedgerEntry.objects.filter(campaign=campaign, category=LedgerCategory.GPU)
    # Round 0 samples (pairs at random, no model); later rounds run 4 GPU steps, the final one 3 (no selecting).
    assert gpu_steps.count() == 1 + 4 * (DEMO_ROUNDS - 1) + 3
    labels = DEMO_ROUNDS * DEMO_ROUND_SETTINGS["pairs_per_round"] * campaign.overlap
    assert labels <= 1500  # the budget of training labels
    assert Judgement.objects.filter(assignment__comparison__campaign=campaign).count() == labels

    assert f"Round {DEMO_ROUNDS} of '{campaign.name}': done" in output and "held-out accuracy" in output
    print(f"\n{output}\n{DEMO_ROUNDS} rounds and the final one in {time.monotonic() - started:.0f} s")

    # The last policy must beat the base by a margin noise does not make, measured as users measure it: a blind
    # evaluation (a battle on each of the demo's held-out prompts, answered by the same noisy labelers over HTTP).
    last = f"round {DEMO_ROUNDS}"
    out = StringIO()
    call_command("evaluate", campaign=campaign.name, checkpoints=f"base,{last}", prompts=DEMO_EVALUATION_PROMPTS,
                 ratings=0, simulate="vader", base_url=live_server.url, labelers=DEMO_SIMULATED_LABELERS,
                 noise=DEMO_NOISE, poll=0.3, stdout=out)
    board = leaderboard_latest(campaign=campaign).data
    final = next(s for s in board["standings"] if s["name"] == last)
    base = PolicyCheckpoint.objects.get(campaign=campaign, label="base")
    final_checkpoint = PolicyCheckpoint.objects.get(round=rounds[-1], label="final")
    base_scores, final_scores = heldout_gold_scores(base), heldout_gold_scores(final_checkpoint)
    summary = (f"blind evaluation on {final['battles']} prompts: {last} wins {100 * final['win_rate_vs_baseline']:.1f} % "
               f"[{100 * final['win_rate_low']:.1f}, {100 * final['win_rate_high']:.1f}] against the base, rating "
               f"{final['rating']:.0f} [{final['rating_low']:.0f}, {final['rating_high']:.0f}]; round gold reward base "
               f"{statistics.mean(base_scores):.3f}, {last} {statistics.mean(final_scores):.3f}, Welch t "
               f"{welch_t(final_scores, base_scores):.2f}\n{out.getvalue()}")
    # The 95 % intervals of the win share and the rating must clear a coin toss and the base: a loop that stopped
    # learning fails here. (The demo measured 75 to 80.5 % in three runs on these 64 prompts,
    # docs/benchmarks.md; the bound is 50 %.)
    assert final["win_rate_low"] > 0.5 and final["rating_low"] > 1000, summary
    assert final_checkpoint.kl_from_base < 10, summary
    print(summary)


def test_killed_worker_leaves_the_round_resumable(start_worker, tiny_campaign, live_server, settings):
    """SIGKILL the worker in the middle of a step; rerunning run_round finishes the round, nothing doubled."""
    settings.ROUNDS_STEP_STALE_SECONDS = 6
    tiny_campaign.settings = QUICK_ROUND_SETTINGS
    tiny_campaign.save(update_fields=["settings"])
    worker = start_worker()
    call_command("run_round", campaign=tiny_campaign.name, simulate="vader", base_url=live_server.url,
                 labelers=2, poll=0.3, stdout=StringIO())
    judgements = set(Judgement.objects.values_list("pk", flat=True))
    assert judgements

    round_ = round_start(campaign=tiny_campaign)  # round 1: reward model training goes to the worker
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        round_.refresh_from_db()
        if round_.step_started_at and (round_.metrics.get("progress") or {}).get("done", 0) >= 1:
            break
        time.sleep(0.1)
    worker.kill()
    round_.refresh_from_db()
    killed_in, killed_task = round_.state, round_.step_owner
    assert killed_in in (RoundState.TRAINING_REWARD, RoundState.OPTIMIZING) and round_.step_started_at, worker.log_tail()

    start_worker()
    out = StringIO()
    call_command("run_round", campaign=tiny_campaign.name, simulate="vader", base_url=live_server.url,
                 labelers=2, poll=0.3, stdout=out)
    round_.refresh_from_db()
    assert round_.state == RoundState.DONE, out.getvalue()
    # The killed step was run again by a new task; nothing was duplicated and no judgement was lost.
    assert round_.metrics["steps"][killed_in]["status"] == "done"
    assert round_.metrics["steps"][killed_in]["task_id"] != killed_task
    assert RewardModel.objects.filter(round=round_).count() == 1
    assert PolicyCheckpoint.objects.filter(round=round_, label="final").count() == 1
    assert judgements <= set(Judgement.objects.values_list("pk", flat=True))
    assert round_.metrics["training_reward"]["data/judgements"] == len(judgements)
    gpu = LedgerEntry.objects.filter(round=round_, category=LedgerCategory.GPU)
    assert sorted(gpu.values_list("reason", flat=True)) == sorted(f"GPU step: {s}" for s in
                                                                  ("training_reward", "optimizing", "sampling", "selecting"))
    assert_rows_and_ledger_agree(tiny_campaign)
