"""Job specifications: what each operation type accepts and where a worker takes it.

Shared by the backend (to validate before queueing) and workers (to route a start
request). Runners, the code that executes a job, live on the worker side only.
"""
