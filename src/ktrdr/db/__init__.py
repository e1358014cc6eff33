"""Database access: tables, engine set-up and migrations (the backend is the only writer)."""
