"""`python manage.py demo`: the whole loop on the embedded default, then how to log in and label by hand.

1. seeds the demo accounts and the sentiment campaign (idempotent);
2. shows the embedded Shakespeare policy shipped with the code (its held-out loss and a sample; `--retrain`
   rebuilds it from the plays);
3. runs RLHF rounds until the campaign has `--rounds` finished ones, with simulated VADER labelers (noisy)
   working through the HTTP API of the site served from this process, then a final round that trains on
   every label and publishes nothing (so the last round's labels train a policy too); a rerun resumes, never
   repeats;
4. prints a table per round;
5. evaluates the base and every round's final policy blindly (battles and blind ratings answered by the same
   simulated labelers) and prints the leaderboard, then the accounts.

`--seed-only` stops after step 1 and adds comparisons cut from the plays, so there is something to label
at once without training anything.
"""

import json
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from annotator.demo.seed import (
    DEMO_EVALUATION_PROMPTS,
    DEMO_NOISE,
    DEMO_ROUNDS,
    DEMO_SIMULATED_LABELERS,
    demo_seed,
)
from annotator.evaluation.selectors import checkpoint_name, default_evaluation_checkpoints
from annotator.models import ComparisonPurpose, EvaluationRun, EvaluationState, Round, RoundState
from annotator.rounds.selectors import round_latest, round_summary
from annotator.services.campaign_setup import campaign_prompt_counts
from annotator.simulation.local_site import local_site_serve
from config.database import describe

SITE_URL = "http://127.0.0.1:8000/"


def _num(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


class Command(BaseCommand):
    help = (
        "Run the demo: seed a sentiment campaign and accounts, train the embedded Shakespeare policy, run RLHF "
        "rounds with simulated VADER labelers, print a table per round and how to log in. Safe to rerun."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rounds", type=int, default=DEMO_ROUNDS,
                            help=f"Finished labeling rounds the demo campaign should have (default {DEMO_ROUNDS}); a "
                                 "final round that trains on all their labels follows them.")
        parser.add_argument("--labelers", type=int, default=DEMO_SIMULATED_LABELERS,
                            help=f"Simulated labelers (default {DEMO_SIMULATED_LABELERS}).")
        parser.add_argument("--retrain", action="store_true",
                            help="Rebuild the shipped base model from the plays first (about 25 minutes on 2 CPU cores).")
        parser.add_argument("--seed-only", action="store_true",
                            help="Only create the campaign, accounts and comparisons cut from the plays; train nothing.")

    def handle(self, *args, **options) -> None:
        if options["rounds"] < 0 or options["labelers"] < 1:
            raise CommandError("--rounds must be 0 or more and --labelers at least 1.")
        self.stdout.write(f"Database: {describe(connection.settings_dict)}")
        self.stdout.write("Seeding the demo (safe to rerun: nothing is duplicated)...")
        summary = demo_seed(with_fragments=options["seed_only"])
        campaign = summary.campaign
        prompts = campaign_prompt_counts(campaign=campaign)
        self.stdout.write(
            f"Campaign {campaign.name!r}: {prompts['train']} train and {prompts['heldout']} held-out prompts, openings "
            "of lines from Shakespeare's plays (the demo's own; a campaign of yours brings its prompts: README, "
            "'Run your own campaign')."
        )
        if not options["seed_only"]:
            try:
                self._run_rounds(campaign=campaign, rounds=options["rounds"], labelers=options["labelers"],
                                 retrain=options["retrain"])
            except KeyboardInterrupt:
                raise CommandError("Interrupted. Run `make demo` again: it resumes from the last finished step.") from None
            self._round_table(campaign=campaign)
            self._evaluate(campaign=campaign, labelers=options["labelers"])
        self._how_to_log_in(summary=summary, rounds_ran=not options["seed_only"])

    def _run_rounds(self, *, campaign, rounds: int, labelers: int, retrain: bool) -> None:
        self._base_model(retrain=retrain)
        latest = round_latest(campaign=campaign)
        if latest is not None and latest.final and latest.state != RoundState.DONE:
            self._final_round(campaign=campaign)  # an interrupted final round is finished before anything else
        finished = Round.objects.filter(campaign=campaign, state=RoundState.DONE, final=False).count()
        to_run = max(0, rounds - finished)
        if to_run:
            self.stdout.write(f"\n== {to_run} RLHF round(s) with {labelers} simulated VADER labelers (noisy) ==")
            with local_site_serve() as base_url:
                call_command(
                    "run_round", campaign=campaign.name, rounds=to_run, simulate="vader", base_url=base_url,
                    labelers=labelers, noise=DEMO_NOISE, stdout=self.stdout, stderr=self.stderr,
                )
        latest = round_latest(campaign=campaign)
        if latest is not None and latest.number > 0 and not latest.final:
            self._final_round(campaign=campaign)
        elif not to_run:
            final = ", and the final round" if latest is not None and latest.final else ""
            self.stdout.write(f"\n== Nothing to run: {finished} round(s) finished{final} ==")

    def _final_round(self, *, campaign) -> None:
        self.stdout.write("\n== The final round: a reward model on every label, the policy optimised once more ==")
        call_command("run_round", campaign=campaign.name, final=True, stdout=self.stdout, stderr=self.stderr)

    def _base_model(self, *, retrain: bool) -> None:
        """The shipped base policy: its held-out loss and a sample, so a newcomer sees what the labelers will read;
        `--retrain` rebuilds it from the plays with the training command it was made with."""
        from models_rl.base_model import MARKER, embedded_base_model, embedded_base_model_config
        from models_rl.data import shakespeare_prompts
        from models_rl.sampling import SamplingConfig, sample

        config = embedded_base_model_config()
        path = Path(config.output_dir)
        if retrain:
            self.stdout.write(f"\n== Retraining the embedded Shakespeare policy ({config.max_steps} steps: about 25 minutes "
                              "on 2 CPU cores, under a minute on a GPU) ==")
            (path / MARKER).unlink(missing_ok=True)  # the marker goes first: a stopped retrain is never taken as done
        else:
            self.stdout.write("\n== The embedded Shakespeare policy (shipped; --retrain rebuilds it) ==")
        path = embedded_base_model()
        metrics = json.loads((path / MARKER).read_text())["metrics"]
        self.stdout.write(f"   {metrics['model/parameters'] / 1e6:.1f} M parameters, {metrics['train/steps']} steps; "
                          f"held-out loss {metrics['eval/loss']:.2f} nats per token")
        drawn = sample(path, shakespeare_prompts(1, seed=3), SamplingConfig(max_new_tokens=24, temperature=0.8, seed=0))[0]
        verse = " / ".join(line.strip() for line in (drawn.prompt + drawn.text).splitlines() if line.strip())
        self.stdout.write(f"   a sample (verse lines joined by /): {verse}")

    def _evaluate(self, *, campaign, labelers: int) -> None:
        """Blind evaluation of the base against every round's final policy by the same simulated labelers, then
        the leaderboard; a rerun shows the finished evaluation of the same checkpoints instead of buying another."""
        finals = [c for c in default_evaluation_checkpoints(campaign=campaign) if c.label in ("base", "final")]
        if len(finals) < 2:
            return
        self.stdout.write(f"\n== Blind evaluation: {', '.join(checkpoint_name(c) for c in finals)} ==")
        wanted = sorted(c.pk for c in finals)
        done = any(sorted(run.checkpoints.values_list("pk", flat=True)) == wanted
                   for run in EvaluationRun.objects.filter(campaign=campaign, state=EvaluationState.DONE))
        if done:
            call_command("evaluate", campaign=campaign.name, show=True, stdout=self.stdout, stderr=self.stderr)
            return
        with local_site_serve() as base_url:
            call_command(
                "evaluate", campaign=campaign.name, checkpoints=",".join(str(pk) for pk in wanted), prompts=DEMO_EVALUATION_PROMPTS,
                simulate="vader", base_url=base_url, labelers=labelers, noise=DEMO_NOISE,
                stdout=self.stdout, stderr=self.stderr,
            )

    def _round_table(self, *, campaign) -> None:
        rounds = list(Round.objects.filter(campaign=campaign).order_by("number"))
        if not rounds:
            return
        currency = campaign.currency
        header = (f"{'round':>5}  {'state':<9}  {'judgements':>10}  {'RM acc':>6}  {'gold agr':>8}  "
                  f"{'gold reward':>11}  {'KL':>6}  {'pairs':>5}  {'labeling':>9}  {'GPU s':>7}")
        self.stdout.write(f"\n== Rounds of {campaign.name!r} ==")
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for round_ in rounds:
            summary = round_summary(round_=round_)
            reward_model = summary["reward_model"]
            checkpoints = summary["checkpoints"]
            final = next((c for c in checkpoints if c.label == "final"), checkpoints[-1] if checkpoints else None)
            spend = summary["spend"]
            self.stdout.write(
                f"{round_.number:>5}  {'final' if round_.final else round_.state:<9}  {summary['labels_submitted']:>10}  "
                f"{_num(reward_model.heldout_accuracy if reward_model else None, 2):>6}  "
                f"{_num(reward_model.gold_agreement if reward_model else None, 2):>8}  "
                f"{_num(final.metrics.get('eval/gold_reward') if final else None):>11}  "
                f"{_num(final.kl_from_base if final else None, 2):>6}  "
                f"{sum(summary['pairs'].values()):>5}  {spend['labeling']:>9.2f}  {_num(spend.get('gpu_seconds'), 1):>7}"
            )
        self.stdout.write(f"(money in {currency}; gold reward = mean VADER sentiment of the round's final policy "
                          "on held-out prompts; KL in nats per completion from the base policy; the final round "
                          "trains on every label and publishes no pairs)")

    def _how_to_log_in(self, *, summary, rounds_ran: bool) -> None:
        campaign = summary.campaign
        evaluation_items = campaign.comparisons.filter(purpose=ComparisonPurpose.EVALUATION).count()
        budget = "no cap" if campaign.money_budget is None else f"{campaign.money_budget:.2f} {campaign.currency}"
        lines = [
            "",
            self.style.SUCCESS(f'Demo ready: campaign "{campaign.name}" - {campaign.title}'),
            f"  {campaign.comparisons.exclude(purpose=ComparisonPurpose.EVALUATION).count()} comparisons"
            + (f" ({summary.comparisons_created} new)" if summary.comparisons_created else
               (" (nothing new, all there already)" if not rounds_ran else ""))
            + f", {campaign.overlap} judgements each"
            + (f" (and {evaluation_items} evaluation items, one answer each)" if evaluation_items else "")
            + f"; budget {budget}, {campaign.pay_per_judgement:.2f} per judgement.",
            "",
        ]
        if rounds_ran:
            lines += [
                "Label the next batch by hand:",
                f"  python manage.py run_round --campaign {campaign.name}     # trains and publishes the next round's pairs",
            ]
        lines += [
            "Start the site:",
            "  python manage.py runserver",
            f"then open {SITE_URL} and log in as one of:",
        ]
        for account in summary.accounts:
            role = "staff (also /admin/, /staff/budget/, /staff/rounds/)" if account.is_staff else "labeler"
            lines.append(f"  {account.username:<12} password {account.password:<18} {role}")
        self.stdout.write("\n".join(lines))
