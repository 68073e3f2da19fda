"""Reporting: aggregates built from the topics, served as reports and metrics."""
