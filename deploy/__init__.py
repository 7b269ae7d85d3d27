"""The production deployment: deploy/dagster.yaml (PostgreSQL) and `make serve`."""
