"""Kubernetes manifests and their generator."""
