"""Routers of our own endpoints."""
