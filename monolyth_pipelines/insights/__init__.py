"""Insights: daily output tables built from the connector tables (see docs/insights.md)."""
