"""Test stub of langchain_core."""
