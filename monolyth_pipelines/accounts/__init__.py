"""Connecting, disconnecting and re-keying accounts: the services the CLI and the app call."""
