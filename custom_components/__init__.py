"""Custom integrations (makes the package importable in tests)."""
