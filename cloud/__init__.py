"""The cloud: ingest, verify and decrypt batches, store the series."""
