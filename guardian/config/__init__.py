"""Deployment settings (environment, flags, YAML file)."""
