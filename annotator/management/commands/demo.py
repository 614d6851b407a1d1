"""`python manage.py demo`: seed the demo campaign and accounts (idempotent), then say how to log in."""

from django.core.management.base import BaseCommand, CommandError

from annotator.services.demo import demo_seed

SITE_URL = "http://127.0.0.1:8000/"


class Command(BaseCommand):
    help = "Create (once) a demo sentiment campaign with Shakespeare comparisons, three labelers and a staff account."

    def handle(self, *args, **options) -> None:
        self.stdout.write("Seeding the demo (safe to rerun: nothing is duplicated)...")
        try:
            summary = demo_seed()
        except KeyboardInterrupt:
            raise CommandError("Interrupted; nothing was changed. Run it again any time.") from None
        campaign = summary.campaign
        created = (
            f"{summary.comparisons_created} new" if summary.comparisons_created else "nothing new, all there already"
        )
        budget = "no cap" if campaign.money_budget is None else f"{campaign.money_budget:.2f} {campaign.currency}"
        lines = [
            "",
            self.style.SUCCESS(f'Demo ready: campaign "{campaign.name}" - {campaign.title}'),
            f"  {summary.comparisons_total} comparisons ({created}), {campaign.overlap} judgements each; "
            f"budget {budget}, {campaign.pay_per_judgement:.2f} per judgement.",
            "",
            "Start the site:",
            "  python manage.py runserver",
            f"then open {SITE_URL} and log in as one of:",
        ]
        for account in summary.accounts:
            role = "staff (also /admin/)" if account.is_staff else "labeler"
            lines.append(f"  {account.username:<12} password {account.password:<18} {role}")
        self.stdout.write("\n".join(lines))
