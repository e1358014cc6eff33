"""Hands pending operations to capable idle workers, and notices lost ones."""
