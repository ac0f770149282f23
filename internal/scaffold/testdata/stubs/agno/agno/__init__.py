"""Test stub of agno."""
