"""completion_lambda."""
