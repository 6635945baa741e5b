"""The web service behind `plurigrid serve`: a typed HTTP API and the web app (docs/http-api.md)."""

from plurigrid.server.app import create_app

__all__ = ["create_app"]
