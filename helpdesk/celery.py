"""The Celery app: tasks live in each app's tasks.py; the beat schedule is here so ops see it in one place."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")

app = Celery("helpdesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.conf.imports = [*app.conf.imports, "mailboxes.tasks_inbound", "mailboxes.tasks_outbound"]
app.conf.beat_schedule = {
    # Cheap: one query picks the due mailboxes; each poll is its own task (leased, so never doubled).
    "schedule-mailbox-polls": {"task": "mailboxes.tasks_inbound.schedule_polls", "schedule": 5.0},
    # Routing: tickets of agents away longer than their queue's timeout go back to the queue.
    "return-away-tickets": {"task": "tickets.tasks.return_tickets_of_away_agents", "schedule": 60.0},
    # Pending tickets without a customer answer for the tenant's N days are solved (auto-close rule).
    "auto-close-pending-tickets": {"task": "tickets.tasks.auto_close_pending_tickets", "schedule": 900.0},
    # Outbox: deferred mail whose retry time has come; mail stuck in `sending` after a worker died; SLAs.
    "dispatch-due-outbound": {"task": "mailboxes.tasks_outbound.dispatch_due_outbound", "schedule": 20.0},
    "recover-stuck-outbound": {"task": "mailboxes.tasks_outbound.recover_stuck_outbound", "schedule": 120.0},
    "check-sla-breaches": {"task": "mailboxes.tasks_outbound.check_sla_breaches", "schedule": 60.0},
}

# The embedded filesystem broker needs its folders before the first message is written.
for _folder in ("data_folder_in", "processed_folder"):
    _path = app.conf.broker_transport_options.get(_folder)
    if _path:
        os.makedirs(_path, exist_ok=True)
