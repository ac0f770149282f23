"""Test stub of autogen_agentchat."""
