"""Migration scripts, applied in order by hub.store.migrate."""
