from django.shortcuts import render

from accounts.access import member_required


@member_required
def inbox(request):
    return render(request, "tickets/inbox.html", {"tickets": []})
