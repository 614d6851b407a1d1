"""Close comparisons that already have every judgement they want (submits now close them as they fill)."""

from django.db import migrations
from django.db.models import Count, F, Q


def close_filled(apps, schema_editor):
    Comparison = apps.get_model("annotator", "Comparison")
    filled = (
        Comparison.objects.filter(is_open=True)
        .annotate(submitted=Count("assignments", filter=Q(assignments__status="submitted")))
        .filter(submitted__gte=F("judgements_wanted"))
        .values_list("pk", flat=True)
    )
    Comparison.objects.filter(pk__in=list(filled)).update(is_open=False)


class Migration(migrations.Migration):
    dependencies = [("annotator", "0003_rounds")]
    operations = [migrations.RunPython(close_filled, migrations.RunPython.noop)]
