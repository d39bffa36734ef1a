"""Read side: read tables, projectors that fill them from events, and their checkpoints."""
