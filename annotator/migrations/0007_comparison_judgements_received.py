"""Comparison.judgements_received: the submit that stores an answer counts it (and closes the item when it
is the last one wanted) in one row update, so two last answers landing together cannot both miss closing it."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("annotator", "0006_ledger_prefix_memo")]
    operations = [
        migrations.AddField(
            model_name="comparison",
            name="judgements_received",
            field=models.PositiveSmallIntegerField(
                default=0, editable=False,
                help_text="Answers submitted so far (kept by the submit that stores each one).",
            ),
        ),
        migrations.RunSQL(
            """
            UPDATE annotator_comparison SET judgements_received = (
                SELECT COUNT(*) FROM annotator_assignment a
                 WHERE a.comparison_id = annotator_comparison.id AND a.status = 'submitted')
            """,
            migrations.RunSQL.noop,
        ),
    ]
