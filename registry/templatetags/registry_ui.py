from django import template
from django.utils.html import format_html

register = template.Library()

# Version states drawn with the shared badge styles.
_BADGES = {"ready": "succeeded", "pending_checks": "queued", "failed": "failed"}
_LABELS = {"ready": "ready", "pending_checks": "pending checks", "failed": "failed"}


@register.filter
def version_status(status: str):
    return format_html('<span class="badge badge-{}">{}</span>', _BADGES.get(status, "none"),
                       _LABELS.get(status, status or "—"))


@register.filter
def runtime_label(runtime: str) -> str:
    return {"onnx": "ONNX Runtime", "sklearn": "scikit-learn"}.get(runtime or "", "not served")
