"""Celery app and thin tasks; the work itself lives in ``newsletter/``."""
