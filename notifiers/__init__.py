"""Delivery channels for notices, and the templates they render."""
