"""`manage.py run_round --campaign NAME`: start or resume the campaign's next RLHF round and watch it.

The steps run on Celery workers (in this process when no broker is configured). The command only starts
the round, shows each step's progress from `Round.metrics["progress"]`, sends again a step whose worker died
(a stale heartbeat), and ends with a summary. Ctrl-C stops the watching, not the round: rerun to resume.

With --simulate the labeling is done by simulated labelers over the site's HTTP API at --base-url. The
command does not start a site itself: run `manage.py runserver` (or gunicorn) next to it, so labelers
and the simulation see the same site, settings and database.
"""

import sys
import time
from datetime import datetime

import requests
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from annotator.evaluation.selectors import leaderboard_latest
from annotator.evaluation.text import leaderboard_text
from annotator.models import Campaign, Round, RoundState, TaskKind
from annotator.core.errors import ServiceError
from annotator.rounds.estimate import round_estimate
from annotator.rounds.selectors import round_labeling_counts, round_latest, round_summary
from annotator.rounds.state_machine import round_dispatch, round_labeling_close, round_start
from annotator.rounds.states import TASK_STEPS
from annotator.simulation.run import SimulationInterrupted, simulate_labelers_run

BAR_WIDTH = 30


def noise_item(value: str) -> tuple[str, float]:
    key, sep, number = value.partition("=")
    if not sep:
        raise ValueError(value)
    return key.strip(), float(number)


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Command(BaseCommand):
    help = (
        "Start or resume a campaign's next RLHF round (reward model, policy optimisation, sampling, pair "
        "selection, labeling), show its progress and end with a summary. Rerunning resumes where it stopped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True, help="Campaign name.")
        parser.add_argument("--rounds", type=int, default=1, help="How many rounds to go through (default 1).")
        parser.add_argument("--wait", action="store_true", help="Wait for the labels before ending a round.")
        parser.add_argument("--simulate", metavar="GOLD", default=None,
                            help="Have simulated labelers (gold 'vader' or a reward-model folder) do the labeling.")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000",
                            help="The running site the simulated labelers use (not started by this command).")
        parser.add_argument("--labelers", type=int, default=3, help="Simulated labelers (default 3).")
        parser.add_argument("--noise", type=noise_item, action="append", default=[], metavar="KEY=VALUE",
                            help="Noise of the simulated labelers, e.g. temperature=0.1 tie_band=0.05 (repeatable).")
        parser.add_argument("--final", action="store_true",
                            help="Run a final round: train the reward model on every label so far and optimise the "
                                 "policy, then stop (no new pairs to label). For when the labeling budget is spent.")
        parser.add_argument("--dry-run", action="store_true",
                            help="Only estimate the round's GPU time and money and check the budgets; change nothing.")
        parser.add_argument("--poll", type=float, default=1.0, help="Seconds between progress reads (default 1).")

    def handle(self, *args, **options):
        campaign = Campaign.objects.filter(name=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"No campaign {options['campaign']!r}.")
        if options["rounds"] < 1:
            raise CommandError("--rounds must be at least 1.")
        if options["final"] and options["rounds"] != 1:
            raise CommandError("--final runs one round, the last: leave out --rounds, or run the others first.")
        if options["simulate"] and options["labelers"] < campaign.overlap:
            raise CommandError(
                f"Campaign {campaign.name!r} wants {campaign.overlap} judgements per pair from different labelers; "
                f"--labelers {options['labelers']} cannot give them."
            )
        self.options = options
        if options["dry_run"]:
            return self._dry_run(campaign)
        try:
            for _ in range(options["rounds"]):
                round_ = self._run_one(campaign)
                self._summary(round_)
                if round_.state != RoundState.DONE:
                    return
        except KeyboardInterrupt:
            self.stdout.write("")
            self.stdout.write(self.style.WARNING(
                "Stopped watching. Steps already sent keep running on the workers; rerun "
                f"`manage.py run_round --campaign {campaign.name}` to resume from the last finished step."
            ))
            sys.exit(130)

    # -- one round ------------------------------------------------------------------------------------------

    def _run_one(self, campaign: Campaign) -> Round:
        round_ = round_latest(campaign=campaign)
        if round_ is None or round_.state != RoundState.LABELING:
            try:
                round_ = round_start(campaign=campaign, final=self.options["final"])
            except ServiceError as exc:
                raise CommandError(exc.message) from exc
            kind = " (final: trains on every label, publishes no pairs)" if round_.final else ""
            self.stdout.write(f"Round {round_.number} of {campaign.name!r}{kind}: {round_.get_state_display().lower()}.")
            round_ = self._follow(round_)
        if round_.state == RoundState.FAILED:
            self._summary(round_)
            step = round_.metrics.get("failed_step", "?")
            raise CommandError(f"Round {round_.number} failed at {step}: {round_.error}\nFix the cause and rerun to resume.")
        if round_.state == RoundState.LABELING:
            if self.options["simulate"]:
                self._simulate(round_)
            elif self.options["wait"]:
                self._wait_for_labels(round_)
            else:
                submitted, wanted = round_labeling_counts(round_=round_)
                self.stdout.write(
                    f"Round {round_.number} is published for labeling ({submitted} of {wanted} judgements in). "
                    "Rerun with --wait to wait for them, or later to go on."
                )
        round_.refresh_from_db()
        return round_

    def _follow(self, round_: Round) -> Round:
        """Show the running steps until the round reaches labeling, done or failed."""
        shown_state, last_line = None, ""
        while True:
            round_.refresh_from_db()
            if round_.state != shown_state:
                if last_line:
                    self._end_line()
                if shown_state in TASK_STEPS:
                    seconds = round_.metrics.get("steps", {}).get(shown_state, {}).get("seconds")
                    done = f" in {seconds:.1f} s" if seconds is not None else ""
                    self.stdout.write(f"  {shown_state}: done{done}")
                shown_state, last_line = round_.state, ""
            if round_.state not in TASK_STEPS:
                return round_
            round_dispatch(round_id=round_.pk)  # sends the step again only if its worker stopped beating
            line = self._progress_line(round_)
            if line != last_line:
                self._write_line(line)
                last_line = line
            time.sleep(self.options["poll"])

    def _progress_line(self, round_: Round) -> str:
        progress = round_.metrics.get("progress") or {}
        if not round_.step_started_at:
            return f"  {round_.state}: waiting for a worker"
        done, total = progress.get("done", 0), progress.get("total", 0)
        if not total:
            return f"  {round_.state}: started"
        filled = int(BAR_WIDTH * done / total)
        eta = ""
        if 0 < done < total and progress.get("phase_started_at"):
            elapsed = (timezone.now() - datetime.fromisoformat(progress["phase_started_at"])).total_seconds()
            eta = f" ETA {_duration(elapsed / done * (total - done))}"
        return f"  {round_.state} / {progress.get('phase', '')} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}{eta}"

    def _write_line(self, line: str) -> None:
        if self.stdout.isatty():
            self.stdout.write("\r" + line.ljust(100), ending="")
            self.stdout.flush()
        else:
            self.stdout.write(line)

    def _end_line(self) -> None:
        if self.stdout.isatty():
            self.stdout.write("")

    # -- labeling -------------------------------------------------------------------------------------------

    def _wait_for_labels(self, round_: Round) -> None:
        last = None
        while not round_labeling_close(round_=round_):
            counts = round_labeling_counts(round_=round_)
            if counts != last:
                self._write_line(f"  labeling: {counts[0]} of {counts[1]} judgements in")
                last = counts
            time.sleep(self.options["poll"])
        self._end_line()
        self.stdout.write("  labeling: done")

    def _simulate(self, round_: Round) -> None:
        base_url = self.options["base_url"].rstrip("/")
        try:
            requests.get(base_url + "/", timeout=5)
        except requests.RequestException:
            raise CommandError(
                f"No site answers at {base_url}. Start one (`manage.py runserver`) or pass --base-url."
            ) from None
        submitted, wanted = round_labeling_counts(round_=round_)
        self.stdout.write(f"  labeling: {self.options['labelers']} simulated labelers ({self.options['simulate']}), "
                          f"{wanted - submitted} judgements to go")
        try:
            report = simulate_labelers_run(
                base_url=base_url, campaign=round_.campaign.name, gold=self.options["simulate"],
                labelers=self.options["labelers"], noise=dict(self.options["noise"]) or None,
                seed=round_.number, stop_when_done=True,
                pay_per_judgement=None,  # paid the campaign's rate, so the estimate and the spend agree
            )
        except SimulationInterrupted:
            raise KeyboardInterrupt from None
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        if not round_labeling_close(round_=round_):
            submitted, wanted = round_labeling_counts(round_=round_)
            raise CommandError(
                f"The simulated labelers stopped with {submitted} of {wanted} judgements in "
                f"(refused by budget {report.refused_by_budget}, errors {report.errors}). Raise the budget or label "
                "the rest, then rerun."
            )
        self.stdout.write(f"  labeling: done ({report.submitted} judgements in {report.seconds:.1f} s)")

    # -- estimate and summary -------------------------------------------------------------------------------

    def _dry_run(self, campaign: Campaign) -> None:
        from models_rl.device import device_name

        device = device_name()
        try:
            estimate = round_estimate(campaign=campaign, device_type=device, final=self.options["final"])
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        gpu = f"{estimate.gpu_seconds} s on {device} ({estimate.gpu_cost} {campaign.currency})"
        self.stdout.write(f"Round {estimate.round_number} of {campaign.name!r} (dry run, nothing changed)")
        self.stdout.write(f"  steps        {', '.join(estimate.steps) or 'none'}")
        self.stdout.write(f"  GPU time     {gpu}; from earlier runs of the same steps")
        items = "items to rate" if campaign.task_kind == TaskKind.RATING else "pairs"
        self.stdout.write(f"  labeling     {estimate.pairs} {items} x overlap {campaign.overlap} = {estimate.judgements} "
                          f"judgements, {estimate.labeling_cost} {campaign.currency}")
        if estimate.problems:
            raise CommandError("Refused: the budget cannot cover this round.\n  " + "\n  ".join(estimate.problems))
        self.stdout.write(self.style.SUCCESS("  The budgets cover this round."))

    def _summary(self, round_: Round) -> None:
        summary = round_summary(round_=round_)
        currency = round_.campaign.currency
        write = self.stdout.write
        write(f"Round {round_.number} of {round_.campaign.name!r}: {round_.get_state_display().lower()}")
        rating = round_.campaign.task_kind == TaskKind.RATING  # single completions rated, not pairs judged
        if summary["judgements_used"] is not None:
            used, unit = ("ratings used", "ratings") if rating else ("judgements used", "pairs")
            write(f"  {used:<19} {summary['judgements_used']} "
                  f"({summary['train_pairs']} train {unit}, {summary['heldout_pairs']} held out)")
        reward_model = summary["reward_model"]
        if reward_model is not None:
            write(f"  {'rating model' if rating else 'reward model':<19} held-out accuracy {_num(reward_model.heldout_accuracy)}, "
                  f"gold agreement {_num(reward_model.gold_agreement)}")
        if summary["checkpoints"]:
            write(f"  {'checkpoint':<18}  {'KL':>8}  {'policy reward':>13}  {'gold reward':>11}")
            for checkpoint in summary["checkpoints"]:
                write(f"  {checkpoint.label:<18}  {_num(checkpoint.kl_from_base):>8}  "
                      f"{_num(checkpoint.metrics.get('policy/reward')):>13}  {_num(checkpoint.metrics.get('eval/gold_reward')):>11}")
        pairs = summary["pairs"]
        if pairs:
            detail = ", ".join(f"{purpose} {n}" for purpose, n in sorted(pairs.items()))
            write(f"  {'items published' if rating else 'pairs published':<19} {sum(pairs.values())} ({detail}); "
                  f"judgements {summary['labels_submitted']} of {summary['labels_wanted']}")
        spend = summary["spend"]
        write(f"  spent               labeling {spend['labeling']:.2f} {currency}, GPU {spend['gpu_money']:.4f} {currency} "
              f"({float(spend['gpu_seconds']):.1f} GPU-seconds), total {spend['total']:.2f} {currency}")
        if round_.error:
            write(self.style.ERROR(f"  error               {round_.error}"))
        snapshot = leaderboard_latest(campaign=round_.campaign)
        if snapshot is not None:
            write(f"  evaluation (manage.py evaluate --campaign {round_.campaign.name} for a new one):")
            write("  " + leaderboard_text(snapshot.data, answers=snapshot.answers).replace("\n", "\n  "))


def _num(value) -> str:
    return "-" if value is None else f"{value:.3f}"
