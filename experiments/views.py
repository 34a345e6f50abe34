from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from accounts.permissions import projects_visible_to


@login_required
def home(request):
    projects = projects_visible_to(request.user).distinct()
    return render(request, "experiments/home.html", {"projects": projects})
