from django import template
from django.utils.html import format_html

register = template.Library()

BADGES = {
    "checks_running": "running", "blocked": "failed", "in_review": "queued", "approved": "succeeded",
    "rejected": "failed", "withdrawn": "cancelled", "superseded": "cancelled",
    "passed": "succeeded", "failed": "failed", "pending": "running",
}


@register.filter
def promotion_badge(status: str) -> str:
    label = (status or "").replace("_", " ")
    return format_html('<span class="badge badge-{}" data-status="{}">{}</span>',
                       BADGES.get(status, "queued"), status, label)
