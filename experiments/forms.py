from django import forms

from experiments.models import EXPERIMENT_NAME_MAX_LENGTH


class ExperimentCreateForm(forms.Form):
    name = forms.CharField(max_length=EXPERIMENT_NAME_MAX_LENGTH)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class NotesForm(forms.Form):
    notes = forms.CharField(required=False, max_length=100_000, widget=forms.Textarea(attrs={"rows": 8}))


class TagForm(forms.Form):
    key = forms.CharField(max_length=250)
    value = forms.CharField(max_length=8000, required=False)


class TagDeleteForm(forms.Form):
    key = forms.CharField(max_length=250)
