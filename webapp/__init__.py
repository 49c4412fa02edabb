"""The web app: Flask in front of the engine (HTTP only; every decision is the engine's)."""
