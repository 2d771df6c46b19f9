"""Prefect flows: thin tasks around the library's stages; deployments live in deploy/."""
