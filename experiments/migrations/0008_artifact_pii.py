"""Artifacts that hold values of PII columns are flagged, and read only by roles that may see PII."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0007_run_parent"),
    ]

    operations = [
        migrations.AddField(
            model_name="artifact",
            name="pii",
            field=models.BooleanField(default=False),
        ),
    ]
