"""`manage.py evaluate --campaign NAME`: blind evaluation of a campaign's checkpoints, from the command line.

Without --show it starts an evaluation run (or follows the one under way: a rerun resumes, never starts a second),
shows the sampling step's progress, optionally has simulated labelers answer it over the site's HTTP API
(--simulate) or waits for people (--wait), then refreshes and prints the leaderboard. --dry-run prints what the
run would evaluate and cost and checks the budget, changing nothing. --show prints the leaderboard (refreshed
when answers came in since the last one), as a table, CSV or JSON.
"""

import json
import sys
import time

import requests
from django.core.management.base import BaseCommand, CommandError

from annotator.core.errors import ServiceError
from annotator.evaluation.export import leaderboard_csv_text
from annotator.evaluation.leaderboard import leaderboard_refresh
from annotator.evaluation.plan import DEFAULT_RATINGS, evaluation_plan
from annotator.evaluation.runs import evaluation_close, evaluation_dispatch, evaluation_resume, evaluation_start
from annotator.evaluation.selectors import campaign_checkpoint_list, checkpoint_name, evaluation_items_unanswered
from annotator.evaluation.text import leaderboard_text
from annotator.models import Campaign, EvaluationRun, EvaluationState
from annotator.simulation.run import SimulationInterrupted, simulate_labelers_run

REFRESH_SECONDS = 30  # while waiting for people: re-prioritise the battles this often


def noise_item(value: str) -> tuple[str, float]:
    key, sep, number = value.partition("=")
    if not sep:
        raise ValueError(value)
    return key.strip(), float(number)


class Command(BaseCommand):
    help = (
        "Blind evaluation of a campaign's checkpoints: sample them on held-out prompts, publish battles and blind "
        "ratings to the labelers, and print the Bradley-Terry leaderboard. Rerunning follows the run under way."
    )

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True, help="Campaign name.")
        parser.add_argument("--checkpoints", default=None,
                            help="Comma-separated checkpoint ids or names ('base', 'round 2', 'round 2 kl_1'); "
                                 "default: the base, every round's final and the newest round's KL checkpoints.")
        parser.add_argument("--prompts", type=int, default=None, help="Held-out prompts (default: up to 16).")
        parser.add_argument("--ratings", type=int, default=DEFAULT_RATINGS,
                            help=f"Blind ratings per rated checkpoint (default {DEFAULT_RATINGS}; 0: none).")
        parser.add_argument("--rated", default=None,
                            help="Checkpoints to rate blindly (ids or names; default: the base and the newest final).")
        parser.add_argument("--judgements", type=int, default=1, help="Answers wanted per item (default 1).")
        parser.add_argument("--dry-run", action="store_true", help="Print what the run would do and cost; change nothing.")
        parser.add_argument("--simulate", metavar="GOLD", default=None,
                            help="Have simulated labelers (gold 'vader' or a reward-model folder) answer the run.")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="The site simulated labelers use.")
        parser.add_argument("--labelers", type=int, default=3, help="Simulated labelers (default 3).")
        parser.add_argument("--noise", type=noise_item, action="append", default=[], metavar="KEY=VALUE",
                            help="Noise of the simulated labelers, e.g. temperature=0.1 (repeatable).")
        parser.add_argument("--wait", action="store_true", help="Wait for people to answer the run.")
        parser.add_argument("--close", type=int, metavar="NUMBER", default=None,
                            help="Close evaluation run NUMBER now, keeping the answers it has.")
        parser.add_argument("--show", action="store_true", help="Only print the leaderboard.")
        parser.add_argument("--format", choices=["table", "csv", "json"], default="table",
                            help="How --show prints the leaderboard (default table).")
        parser.add_argument("--poll", type=float, default=1.0, help="Seconds between progress reads (default 1).")

    def handle(self, *args, **options):
        campaign = Campaign.objects.filter(name=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"No campaign {options['campaign']!r}.")
        self.options = options
        try:
            if options["close"] is not None:
                return self._close(campaign, options["close"])
            if options["show"]:
                return self._show(campaign)
            run = self._current_run(campaign) or self._start(campaign)
            if run is None:
                return
            run = self._follow_sampling(run)
            self._label(run)
            self._show(campaign, required=False)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        except KeyboardInterrupt:
            self.stdout.write(self.style.WARNING(
                f"\nStopped. The run keeps going; rerun `manage.py evaluate --campaign {campaign.name}` to follow it."
            ))
            sys.exit(130)

    # -- starting ---------------------------------------------------------------------------------------------

    def _ids(self, campaign: Campaign, text: str | None, *, name: str) -> list[int] | None:
        if text is None:
            return None
        by_name = {checkpoint_name(c): c.pk for c in campaign_checkpoint_list(campaign=campaign)}
        ids = []
        for part in (p.strip() for p in text.split(",") if p.strip()):
            if part.isdigit():
                ids.append(int(part))
            elif part in by_name:
                ids.append(by_name[part])
            else:
                raise CommandError(f"--{name}: no checkpoint {part!r}; the campaign has {', '.join(by_name) or 'none'}.")
        return ids

    def _current_run(self, campaign: Campaign) -> EvaluationRun | None:
        run = (EvaluationRun.objects.filter(campaign=campaign)
               .exclude(state=EvaluationState.DONE).order_by("-number").first())
        if run is None:
            return None
        self.stdout.write(f"Evaluation {run.number} of {campaign.name!r} is {run.get_state_display().lower()}: "
                          "following it (close it with --close to start another).")
        if run.state == EvaluationState.FAILED:
            run = evaluation_resume(run=run)
        return run

    def _start(self, campaign: Campaign) -> EvaluationRun | None:
        from models_rl.device import device_name

        options = self.options
        plan = evaluation_plan(
            campaign=campaign, checkpoint_ids=self._ids(campaign, options["checkpoints"], name="checkpoints"),
            prompts=options["prompts"], ratings_per_checkpoint=options["ratings"],
            rated_checkpoint_ids=self._ids(campaign, options["rated"], name="rated"),
            judgements_wanted=options["judgements"], device_type=device_name(),
        )
        dry = " (dry run, nothing changed)" if options["dry_run"] else ""
        self.stdout.write(f"Evaluation of {campaign.name!r}{dry}")
        self.stdout.write("  " + plan.describe().replace("\n", "\n  "))
        if options["dry_run"]:
            self.stdout.write(self.style.SUCCESS("  The budget covers this evaluation."))
            return None
        run = evaluation_start(plan=plan)
        self.stdout.write(f"Evaluation {run.number} started.")
        return run

    def _follow_sampling(self, run: EvaluationRun) -> EvaluationRun:
        last = ""
        while True:
            run.refresh_from_db()
            if run.state != EvaluationState.SAMPLING:
                break
            evaluation_dispatch(run_id=run.pk)  # sends the step again only if its worker stopped beating
            progress = run.metrics.get("progress") or {}
            line = (f"  sampling: {progress.get('phase', '')} {progress.get('done', 0)}/{progress.get('total', 0)}"
                    if run.step_started_at else "  sampling: waiting for a worker")
            if line != last:
                self.stdout.write(line)
                last = line
            time.sleep(self.options["poll"])
        if run.state == EvaluationState.FAILED:
            raise CommandError(f"Evaluation {run.number} failed while sampling: {run.error}\n"
                               "Fix the cause and rerun to resume.")
        sampling = run.metrics.get("sampling", {})
        if sampling:
            self.stdout.write(f"  sampling: done in {sampling['seconds']:.1f} s on {sampling['device']}: "
                              f"{sampling['battles']} battles and {sampling['ratings']} blind ratings published")
        return run

    # -- labeling ---------------------------------------------------------------------------------------------

    def _label(self, run: EvaluationRun) -> None:
        if run.state != EvaluationState.LABELING:
            return
        if self.options["simulate"]:
            self._simulate(run)
        elif self.options["wait"]:
            self._wait(run)
        else:
            self.stdout.write(f"  labeling: {evaluation_items_unanswered(run=run)} answers to go. Rerun with --wait "
                              "to wait for them, or --show later for the leaderboard so far.")

    def _simulate(self, run: EvaluationRun) -> None:
        base_url = self.options["base_url"].rstrip("/")
        try:
            requests.get(base_url + "/", timeout=5)
        except requests.RequestException:
            raise CommandError(f"No site answers at {base_url}. Start one (`manage.py runserver`) or pass "
                               "--base-url.") from None
        self.stdout.write(f"  labeling: {self.options['labelers']} simulated labelers ({self.options['simulate']}), "
                          f"{evaluation_items_unanswered(run=run)} answers to go")
        try:
            report = simulate_labelers_run(
                base_url=base_url, campaign=run.campaign.name, gold=self.options["simulate"],
                labelers=self.options["labelers"], noise=dict(self.options["noise"]) or None,
                seed=1000 + run.number, stop_when_done=True, pay_per_judgement=None,
            )
        except SimulationInterrupted:
            raise KeyboardInterrupt from None
        if not evaluation_close(run=run):
            raise CommandError(
                f"The simulated labelers stopped with {evaluation_items_unanswered(run=run)} answers missing "
                f"(refused by budget {report.refused_by_budget}, errors {report.errors}). Raise the budget, or "
                f"close the run with --close {run.number} to rank on what is in."
            )
        self.stdout.write(f"  labeling: done ({report.submitted} answers in {report.seconds:.1f} s)")

    def _wait(self, run: EvaluationRun) -> None:
        last_refresh, last_left = time.monotonic(), None
        while not evaluation_close(run=run):
            left = evaluation_items_unanswered(run=run)
            if left != last_left:
                self.stdout.write(f"  labeling: {left} answers to go")
                last_left = left
            if time.monotonic() - last_refresh > REFRESH_SECONDS:
                leaderboard_refresh(campaign=run.campaign)  # puts the next labels where the ranking is least sure
                last_refresh = time.monotonic()
            time.sleep(self.options["poll"])
        self.stdout.write("  labeling: done")

    def _close(self, campaign: Campaign, number: int) -> None:
        run = EvaluationRun.objects.filter(campaign=campaign, number=number).first()
        if run is None:
            raise CommandError(f"{campaign.name!r} has no evaluation {number}.")
        evaluation_close(run=run, force=True)
        self.stdout.write(f"Evaluation {number} closed with {run.metrics.get('closed_with_answers_missing', 0)} "
                          "answers missing.")
        self._show(campaign)

    # -- the leaderboard --------------------------------------------------------------------------------------

    def _show(self, campaign: Campaign, *, required: bool = True) -> None:
        snapshot = leaderboard_refresh(campaign=campaign)
        if snapshot is None and not required:
            return
        if snapshot is None:
            raise CommandError(f"{campaign.name!r} has no evaluation answers yet: start an evaluation first.")
        if self.options["format"] == "json":
            self.stdout.write(json.dumps({"answers": snapshot.answers, **snapshot.data}, indent=2))
        elif self.options["format"] == "csv":
            self.stdout.write(leaderboard_csv_text(snapshot.data), ending="")
        else:
            self.stdout.write(leaderboard_text(snapshot.data, answers=snapshot.answers))
