"""The Plexus catalog: a local database of every Plex library (no Home Assistant imports)."""
