"""Citizen reports and the incident workflow (issue 15)."""
