"""Reports under /<tenant>/reports/ (members; admins see every agent)."""

from django.urls import path

from tickets import views_reports as v

app_name = "reports"
urlpatterns = [
    path("", v.overview, name="overview"),
    path("export/<slug:table>.csv", v.export_csv, name="export"),
]
