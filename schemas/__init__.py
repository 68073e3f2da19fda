"""Message contracts shared by every Qinglian service: pydantic v2 models and topic names.

No I/O here. A service imports these to read and write Kafka messages; it never imports
another service.
"""
