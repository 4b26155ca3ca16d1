"""Tests for Plexus."""
