"""Escalation: applies the hospital's rules to cases and events, and explains each decision."""
