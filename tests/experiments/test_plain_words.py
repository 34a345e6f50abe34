"""Job kinds and failure messages in plain words, and the training form's proposed target."""

import pytest
from django.template import Context, Template

from experiments.templatetags.steward_ui import job_kind, plain_words
from tests.factories import UserFactory
from training.views import target_proposal


def test_job_kinds_are_words():
    assert job_kind("model_version_check") == "Model version checks"
    assert job_kind("training") == "Training"
    assert job_kind("drift_report") == "Drift report"  # a kind added later still reads as words
    assert job_kind("") == "Job"


def test_numpy_scalars_are_shown_as_their_values():
    assert plain_words("Column 'alcohol': value np.float64(14.23) is out of range") == (
        "Column 'alcohol': value 14.23 is out of range")
    assert plain_words("classes [np.int64(0), np.int64(1)] and np.str_('a')") == "classes [0, 1] and a"
    assert plain_words("nothing to change (3.5)") == "nothing to change (3.5)"


@pytest.mark.django_db
def test_job_progress_partial_shows_the_kind_and_error_in_words():
    from core.models import Job, JobStatus

    job = Job.objects.create(kind="model_version_check", status=JobStatus.FAILED,
                             error="Prediction np.float64(0.5) differs", created_by=UserFactory())
    html = Template('{% include "experiments/_job_progress.html" %}').render(Context({"job": job}))
    assert "Model version checks" in html and "model_version_check" not in html
    assert "Prediction 0.5 differs" in html


@pytest.mark.parametrize(("columns", "expected"), [
    ([{"name": "a"}, {"name": "quality", "role": "target"}, {"name": "label"}], "quality"),
    ([{"name": "a"}, {"name": "Label"}], "Label"),
    ([{"name": "x1"}, {"name": "y"}], "y"),
    ([{"name": "target"}, {"name": "label"}], "target"),
    ([{"name": "a"}, {"name": "b"}], None),
])
def test_training_form_proposes_a_target(columns, expected):
    assert target_proposal(columns) == expected
