"""Webhook notifications: recorded with the status change that causes them (the same
commit), delivered afterwards, signed, in order, retried until they arrive."""
