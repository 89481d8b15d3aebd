"""scorer_token_refresher: keeps a Topcoder M2M token in an SSM SecureString for scorer tasks (decision 091)."""
