"""Quarantined inbound mail, under /<tenant>/settings/quarantine/ (admins only)."""

from django.urls import path

from mailboxes import views_quarantine as views

app_name = "quarantine"
urlpatterns = [
    path("", views.quarantine_list, name="list"),
    path("<int:inbound_id>/", views.quarantine_detail, name="detail"),
    path("<int:inbound_id>/raw/", views.download, name="download"),
    path("<int:inbound_id>/reprocess/", views.reprocess, name="reprocess"),
    path("<int:inbound_id>/discard/", views.discard, name="discard"),
]
