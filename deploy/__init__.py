"""Deployment: the local launcher script and the container and cluster manifests (not an installed package)."""
