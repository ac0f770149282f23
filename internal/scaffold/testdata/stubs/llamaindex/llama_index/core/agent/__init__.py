"""Test stub of llama_index.core.agent."""
