"""Mailbox settings of a tenant, under /<tenant>/settings/."""

from django.urls import path

from mailboxes import views, views_oauth_apps

app_name = "mailboxes"
urlpatterns = [
    path("mailboxes/", views.mailbox_list, name="list"),
    path("mailboxes/add/", views.add, name="add"),
    path("mailboxes/add/manual/", views.manual, name="manual"),
    path("mailboxes/add/discover/", views.autodiscover_fields, name="autodiscover"),
    path("mailboxes/connect/<str:provider>/", views.connect, name="connect"),
    path("mailboxes/<int:mailbox_id>/", views.detail, name="detail"),
    path("mailboxes/<int:mailbox_id>/sections/<str:section>/", views.save_section, name="section"),
    path("mailboxes/<int:mailbox_id>/test/", views.start_test, name="test"),
    path("mailboxes/<int:mailbox_id>/tests/<int:test_id>/", views.test_status, name="test_status"),
    path("mailboxes/<int:mailbox_id>/reconnect/", views.reconnect, name="reconnect"),
    path("mailboxes/<int:mailbox_id>/copy/", views.copy, name="copy"),
    path("mailboxes/<int:mailbox_id>/active/", views.toggle, name="toggle"),
    path("mailboxes/<int:mailbox_id>/default/", views.make_default, name="default"),
    path("mailboxes/<int:mailbox_id>/delete/", views.delete, name="delete"),
    path("email/", views.email_settings, name="email_settings"),
    path("email/layout-preview/", views.layout_preview, name="layout_preview"),
    path("oauth-apps/", views_oauth_apps.oauth_apps, name="oauth_apps"),
    path("oauth-apps/<str:provider>/", views_oauth_apps.oauth_app_save, name="oauth_app_save"),
    path("oauth-apps/<str:provider>/clear/", views_oauth_apps.oauth_app_clear, name="oauth_app_clear"),
]
