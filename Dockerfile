# The app image: `newsletter` (API, migrations, CLI), Celery worker and beat, Flower.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NEWSLETTER_ENVIRONMENT=production
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY newsletter ./newsletter
COPY worker ./worker
COPY templates ./templates
COPY migrations ./migrations
COPY seeds ./seeds
# editable: the code finds templates/ and migrations/ next to the package
RUN pip install --no-cache-dir -e '.[ops]' \
    && useradd --create-home --uid 10001 app
# the code runs as an unprivileged user; beat keeps its schedule file in /tmp
USER app
EXPOSE 8000 5555
CMD ["newsletter", "--help"]
