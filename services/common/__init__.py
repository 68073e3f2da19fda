"""Plumbing every service shares: settings, broker, store, HTTP surface. No business rules."""
