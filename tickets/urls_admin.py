"""Ticket settings pages under /<tenant>/settings/ (admins), and the canned-answer file download (members)."""

from django.urls import path

from tickets import views_admin as v

app_name = "ticket_settings"
urlpatterns = [
    path("queues/", v.queue_list, name="queues"),
    path("queues/new/", v.queue_edit, name="queue_new"),
    path("queues/<int:queue_id>/", v.queue_edit, name="queue_edit"),
    path("queues/<int:queue_id>/delete/", v.queue_delete, name="queue_delete"),
    path("canned-answers/", v.canned_list, name="canned"),
    path("canned-answers/new/", v.canned_edit, name="canned_new"),
    path("canned-answers/<int:answer_id>/", v.canned_edit, name="canned_edit"),
    path("canned-answers/<int:answer_id>/delete/", v.canned_delete, name="canned_delete"),
    path(
        "canned-answers/<int:answer_id>/files/<int:attachment_id>/delete/",
        v.canned_attachment_delete,
        name="canned_attachment_delete",
    ),
    path("canned-answers/files/<int:attachment_id>/", v.canned_attachment, name="canned_attachment"),
    path("tags/", v.tag_list, name="tags"),
    path("tags/<int:tag_id>/rename/", v.tag_rename, name="tag_rename"),
    path("tags/<int:tag_id>/merge/", v.tag_merge, name="tag_merge"),
    path("tags/<int:tag_id>/delete/", v.tag_delete, name="tag_delete"),
    path("close-reasons/", v.close_reasons, name="close_reasons"),
    path("close-reasons/<int:reason_id>/rename/", v.close_reason_rename, name="close_reason_rename"),
    path("close-reasons/<int:reason_id>/delete/", v.close_reason_delete, name="close_reason_delete"),
    path("auto-close/", v.auto_close, name="auto_close"),
]
