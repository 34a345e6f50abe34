from django.urls import path

from governance import views_analysis

app_name = "governance_analysis"

version = "p/<slug:slug>/models/<str:name>/v/<int:number>/"

urlpatterns = [
    path(version + "fairness/rerun/", views_analysis.analysis_rerun, {"which": "fairness"},
         name="fairness-rerun"),
    path(version + "explanation/rerun/", views_analysis.analysis_rerun, {"which": "explanation"},
         name="explanation-rerun"),
]
