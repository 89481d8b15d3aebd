"""challenge_lambda."""
