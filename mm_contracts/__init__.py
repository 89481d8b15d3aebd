"""Contracts shared by the three functions, the CDK stacks and the local pipeline.

Everything that crosses a stage boundary is defined here once: the normalized submission the router
publishes, the challenge configuration, the lifecycle record, the scorer task's environment and tag
names, outcome and reason codes, metric names, and each function's environment-config model.

Nothing in this package talks to AWS at import time.
"""
