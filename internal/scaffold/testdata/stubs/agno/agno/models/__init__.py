"""Test stub of agno.models."""
