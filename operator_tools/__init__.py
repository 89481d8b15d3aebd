"""Operator tools: commands an operator (or a deploy workflow) runs against a deployed environment.

`health.check_environment` reads an environment's resources and says what is wrong; `smoke.run_smoke` sends one
synthetic submission through it (decision 083). Both take every name from the wiring plan and build their AWS
clients lazily from `clients.AwsClients`, so nothing talks to AWS at import time.
"""
