"""Outbound pages under /<tenant>/settings/: the email log, notification templates, my notifications."""

from django.urls import path

from mailboxes import views_outbound as views

app_name = "outbound"
urlpatterns = [
    path("email-log/", views.email_log, name="emaillog"),
    path("email-log/<int:outbound_id>/", views.email_detail, name="emaillog_detail"),
    path("email-log/<int:outbound_id>/raw.eml", views.email_raw, name="emaillog_raw"),
    path("email-log/<int:outbound_id>/retry/", views.email_retry, name="emaillog_retry"),
    path("email-log/<int:outbound_id>/send-again/", views.email_send_again, name="emaillog_send_again"),
    path("templates/", views.template_list, name="templates"),
    path("templates/<str:kind>/", views.template_edit, name="template_edit"),
    path("templates/<str:kind>/preview/", views.template_preview, name="template_preview"),
    path("notifications/", views.notification_preferences, name="notification_preferences"),
    path("slas/", views.sla_settings, name="sla"),
    path("slas/<int:policy_id>/delete/", views.sla_delete, name="sla_delete"),
]
