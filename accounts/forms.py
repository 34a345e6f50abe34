from django import forms

from accounts.models import Role


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100, widget=forms.TextInput(attrs={"placeholder": "e.g. training laptop"})
    )
    expires_in_days = forms.IntegerField(
        required=False, min_value=1, max_value=3650, label="Expires in (days)",
        help_text="Leave empty for a token that does not expire.",
    )


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=[(r.label, r.label) for r in Role], initial=Role.VIEWER.label)


class MemberRemoveForm(forms.Form):
    username = forms.CharField(max_length=150)


class ProjectCreateForm(forms.Form):
    slug = forms.CharField(max_length=64, widget=forms.TextInput(attrs={"placeholder": "e.g. churn-model"}))
    name = forms.CharField(max_length=200, required=False)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


def form_add_service_errors(form: forms.Form, exc) -> None:
    """Put a service's ValidationError on the form: on the named field if the form has it."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            for error in errors:
                for message in error.messages:
                    form.add_error(field if field in form.fields else None, message)
    else:
        for message in exc.messages:
            form.add_error(None, message)
