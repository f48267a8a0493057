"""Thin Celery tasks of the ticket area: they call the domain modules (scheduled in helpdesk/celery.py)."""

from celery import shared_task

from tickets import autoclose, routing


@shared_task(acks_late=True, ignore_result=True)
def return_tickets_of_away_agents() -> int:
    return routing.return_tickets_of_away_agents()


@shared_task(acks_late=True, ignore_result=True)
def auto_close_pending_tickets() -> int:
    return autoclose.run_all()
