"""Test stub of langgraph."""
