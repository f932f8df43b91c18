"""The push notification receiver (an ASGI app); ``monolyth-connectors webhook serve`` runs it."""
