"""Observability: metrics declared once, read cheaply; structured logs with personal data masked."""
