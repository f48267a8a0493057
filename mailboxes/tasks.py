"""Thin Celery tasks of the mailbox settings: they take ids and call the domain modules."""

from celery import shared_task

from mailboxes import connection_test
from mailboxes.models import ConnectionTest


@shared_task(acks_late=True, ignore_result=True)
def run_connection_test(test_id: int) -> None:
    connection_test.run(ConnectionTest.objects.get(pk=test_id))
