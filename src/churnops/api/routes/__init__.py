"""The API's routes: scoring (behind authentication) and operations (health, metrics)."""
