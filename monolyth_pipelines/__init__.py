"""Monolyth connector pipelines: Google Drive and Gmail metadata into the connector tables."""
