"""Test stub of langchain."""
