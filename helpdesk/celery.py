"""The Celery app: tasks live in each app's tasks.py; the beat schedule is here so ops see it in one place."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")

app = Celery("helpdesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.conf.beat_schedule = {}

# The embedded filesystem broker needs its folders before the first message is written.
for _folder in ("data_folder_in", "processed_folder"):
    _path = app.conf.broker_transport_options.get(_folder)
    if _path:
        os.makedirs(_path, exist_ok=True)
