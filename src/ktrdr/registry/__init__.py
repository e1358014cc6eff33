"""Worker registry: who is alive, what they can run, what they run now."""
