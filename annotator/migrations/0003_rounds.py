from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("annotator", "0002_append_only_tables")]

    operations = [
        migrations.AddField(
            model_name="round",
            name="step_owner",
            field=models.CharField(
                blank=True, max_length=64,
                help_text="Id of the task that holds the current step; empty when none runs it.",
            ),
        ),
        migrations.AddField(
            model_name="round",
            name="step_heartbeat_at",
            field=models.DateTimeField(
                blank=True, null=True,
                help_text="Last sign of life of the step's task; a stale one may be taken over.",
            ),
        ),
    ]
