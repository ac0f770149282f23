"""Test stub of autogen_ext.models."""
