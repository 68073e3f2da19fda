"""The notifier: every decision and overdue case to the people responsible."""
