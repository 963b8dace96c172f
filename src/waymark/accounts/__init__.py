"""Users, passwords, sessions, API tokens and the request's actor."""
