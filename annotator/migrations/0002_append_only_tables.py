"""Judgements, ratings and ledger entries refuse UPDATE and DELETE at the database level.

TRUNCATE (used by test teardown) does not fire row triggers, so test isolation still works.
"""

from django.db import migrations

TABLES = ["annotator_judgement", "annotator_rating", "annotator_ledgerentry"]

FUNCTION = """
CREATE OR REPLACE FUNCTION annotator_refuse_rewrite() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% on % refused: this table is append-only (add a reversing entry instead)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'raise_exception';
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    schema_editor.execute(FUNCTION, params=None)
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION annotator_refuse_rewrite()"
        )


def backwards(apps, schema_editor):
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS annotator_refuse_rewrite()")


class Migration(migrations.Migration):
    dependencies = [("annotator", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
