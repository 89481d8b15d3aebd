"""router_lambda."""
