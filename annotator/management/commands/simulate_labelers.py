"""`manage.py simulate_labelers`: K simulated labelers answer a campaign over the site's HTTP API."""

import sys
import time
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from annotator.core.errors import ServiceError
from annotator.simulation.counters import SimulationReport
from annotator.simulation.run import SimulationInterrupted, simulate_labelers_run

NON_TTY_PROGRESS_EVERY_SECONDS = 5.0


def pay_rate(value: str) -> Decimal | None:
    """An amount, or "campaign" for the campaign's own rate."""
    if value == "campaign":
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValueError(value) from None


class Command(BaseCommand):
    help = (
        "Run simulated labelers (a gold model with per-labeler noise) against a running site through its public "
        "API: they take items, answer and are paid like people, until the campaign has nothing left for them, "
        "the budget cap stops them, or --max-items judgements are in."
    )

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True, help="Campaign name.")
        parser.add_argument("--gold", default="vader", help="'vader' or the directory of a local reward model.")
        parser.add_argument("--labelers", type=int, default=3, help="How many labelers work at once (default 3).")
        parser.add_argument("--noise-temperature", type=float, default=0.1,
                            help="Bradley-Terry temperature in gold-score units; 0 answers exactly as the gold.")
        parser.add_argument("--tie-band", type=float, default=0.05, help="Score differences below this are ties.")
        parser.add_argument("--position-bias", type=float, default=0.0,
                            help="Log-odds added in favour of the text shown first.")
        parser.add_argument("--max-items", type=int, default=None, help="Stop after this many judgements in all.")
        parser.add_argument("--pay-per-judgement", type=pay_rate, default=Decimal("0"),
                            help="What each simulated labeler is paid per item: an amount, or 'campaign' for the "
                                 "campaign's rate, so the budget cap stops them as it would people (default 0).")
        parser.add_argument("--seed", type=int, default=0, help="Seeds every labeler's noise (they still differ).")
        parser.add_argument("--prefix", default="sim", help="Account names are <prefix>-001, <prefix>-002, ...")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="The running site.")

    def handle(self, *args, **options):
        noise = {
            "temperature": options["noise_temperature"],
            "tie_band": options["tie_band"],
            "position_bias": options["position_bias"],
        }
        self._last_progress_line = 0.0
        self.stdout.write(
            f"{options['labelers']} simulated labelers ({options['gold']}, {noise}) on campaign "
            f"{options['campaign']!r} at {options['base_url']}; Ctrl-C stops them."
        )
        try:
            report = simulate_labelers_run(
                base_url=options["base_url"],
                campaign=options["campaign"],
                gold=options["gold"],
                labelers=options["labelers"],
                noise=noise,
                max_items=options["max_items"],
                seed=options["seed"],
                pay_per_judgement=options["pay_per_judgement"],
                prefix=options["prefix"],
                progress=self._show_progress,
            )
        except SimulationInterrupted as interrupted:
            self._end_progress_line()
            self.stdout.write(self.style.WARNING("Interrupted; the labelers were stopped."))
            self._summary(interrupted.report)
            sys.exit(130)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self._end_progress_line()
        self._summary(report)

    def _show_progress(self, report: SimulationReport) -> None:
        line = (
            f"{report.seconds:6.1f} s  {report.submitted} judgements ({report.judgements_per_second:.1f}/s)  "
            f"{len(report.per_labeler) - len(report.stop_reasons)} labelers working  errors {report.errors}"
        )
        if self.stdout.isatty():
            self.stdout.write("\r" + line, ending="")
            self.stdout.flush()
        elif time.monotonic() - self._last_progress_line >= NON_TTY_PROGRESS_EVERY_SECONDS:
            self._last_progress_line = time.monotonic()
            self.stdout.write(line)

    def _end_progress_line(self) -> None:
        if self.stdout.isatty():
            self.stdout.write("")

    def _summary(self, report: SimulationReport) -> None:
        self.stdout.write(
            f"Submitted {report.submitted} judgements in {report.seconds:.1f} s "
            f"({report.judgements_per_second:.1f}/s); refused by budget {report.refused_by_budget}, "
            f"lease expirations {report.lease_expirations}, errors {report.errors}."
        )
        for username, count in sorted(report.per_labeler.items()):
            reason = report.stop_reasons.get(username, "still working")
            self.stdout.write(f"  {username}: {count} judgements, stopped: {reason}")
