"""Chest X-ray domain language shared by web app, training and inference (stdlib only)."""
