from django.urls import path

from tickets import views, views_compose, views_files, views_people

app_name = "tickets"
urlpatterns = [
    # lists
    path("", views.inbox, name="inbox"),
    path("views/<slug:view>/", views.ticket_list, name="list"),
    path("queues/<int:queue_id>/", views.queue_list, name="queue"),
    path("tickets/changes/", views.changes, name="changes"),
    path("tickets/bulk/", views.bulk, name="bulk"),
    # one ticket
    path("tickets/<int:number>/", views.detail, name="detail"),
    path("tickets/<int:number>/fields/", views.update_fields, name="fields"),
    path("tickets/<int:number>/title/", views.update_title, name="title"),
    path("tickets/<int:number>/tags/", views.new_tag, name="new_tag"),
    path("tickets/<int:number>/notes/", views.add_note, name="note"),
    path("tickets/<int:number>/reply/", views_compose.reply, name="reply"),
    path("tickets/<int:number>/reply/preview/", views_compose.preview, name="reply_preview"),
    path("tickets/<int:number>/canned/", views_compose.canned_search, name="canned_search"),
    path("tickets/<int:number>/canned/<int:answer_id>/", views_compose.canned_insert, name="canned_insert"),
    path("tickets/<int:number>/unread/", views.mark_unread, name="unread"),
    path("tickets/<int:number>/merge/", views.merge_ticket, name="merge"),
    path("tickets/<int:number>/messages/<int:message_id>/split/", views.split, name="split"),
    path(
        "tickets/<int:number>/messages/<int:message_id>/body/", views_files.message_body, name="message_body"
    ),
    path(
        "tickets/<int:number>/messages/<int:message_id>/trace/",
        views_files.message_trace,
        name="message_trace",
    ),
    path(
        "tickets/<int:number>/messages/<int:message_id>/original/",
        views_files.message_original,
        name="message_original",
    ),
    # files
    path("attachments/<int:attachment_id>/", views_files.attachment, name="attachment"),
    path("attachments/<int:attachment_id>/inline/", views_files.inline_image, name="inline_image"),
    # contacts and customers
    path("contacts/", views_people.contact_list, name="contacts"),
    path("contacts/<int:contact_id>/", views_people.contact_detail, name="contact"),
    path("contacts/<int:contact_id>/edit/", views_people.contact_edit, name="contact_edit"),
    path("contacts/<int:contact_id>/merge/", views_people.contact_merge, name="contact_merge"),
    path("customers/", views_people.customer_list, name="customers"),
    path("customers/<int:customer_id>/", views_people.customer_detail, name="customer"),
    path("customers/<int:customer_id>/edit/", views_people.customer_edit, name="customer_edit"),
    path(
        "customers/<int:customer_id>/domains/", views_people.customer_domain_add, name="customer_domain_add"
    ),
    path(
        "customers/<int:customer_id>/domains/<int:domain_id>/remove/",
        views_people.customer_domain_remove,
        name="customer_domain_remove",
    ),
]
