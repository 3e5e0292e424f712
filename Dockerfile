FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY newsletter ./newsletter
COPY worker ./worker
COPY templates ./templates
COPY migrations ./migrations
COPY seeds ./seeds
RUN pip install --no-cache-dir -e .
ENV NEWSLETTER_ENVIRONMENT=production
CMD ["newsletter", "--help"]
