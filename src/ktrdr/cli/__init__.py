"""The `ktrdr` command line: talks to the API over HTTP only (plus `ktrdr up`)."""
