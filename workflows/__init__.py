"""Workflows: one VideoJobWorkflow per job."""
