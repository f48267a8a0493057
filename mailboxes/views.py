from django.shortcuts import render

from accounts.access import admin_required


@admin_required
def mailbox_list(request):
    return render(request, "mailboxes/list.html", {"mailboxes": []})
