import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# The two single-column foreign-key indexes are covered by composite indexes that lead with the same column
# (see Assignment). Only the indexes are dropped: letting AlterField do it would also drop and re-add both
# foreign-key constraints, re-checking every assignment under a table lock.
INDEXES = {
    "annotator_assignment_comparison_id_af04c3f3": "comparison_id",
    "annotator_assignment_labeler_id_b9169e92": "labeler_id",
}


class Migration(migrations.Migration):

    dependencies = [
        ("annotator", "0007_comparison_judgements_received"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="assignment",
                    name="comparison",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                            related_name="assignments", to="annotator.comparison"),
                ),
                migrations.AlterField(
                    model_name="assignment",
                    name="labeler",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                            related_name="assignments", to=settings.AUTH_USER_MODEL),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f"DROP INDEX IF EXISTS {name}",
                    reverse_sql=f"CREATE INDEX IF NOT EXISTS {name} ON annotator_assignment ({column})",
                )
                for name, column in INDEXES.items()
            ],
        ),
    ]
