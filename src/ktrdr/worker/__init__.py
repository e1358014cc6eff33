"""A worker process: registers with the backend, runs one job at a time, reports back."""
