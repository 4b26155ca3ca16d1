"""End-to-end harness: real Home Assistant processes, each with Plexus and its own home."""
