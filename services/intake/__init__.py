"""Intake: the front door. Validates events from other hospital systems and publishes them."""
