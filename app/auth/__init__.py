"""Staff users, roles, API tokens and the permission check."""
