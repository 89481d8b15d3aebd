"""Contracts: the data every function, the CDK stacks and the local pipeline agree on (decisions 001, 101).

What belongs here: what crosses a stage boundary or a port, defined once. The normalized submission the router
publishes, the challenge configuration, the lifecycle record and the answers of the status-table ledgers
(`models/`), the Kafka on-failure record, the Topcoder API payloads (`topcoder`), the scorer task's environment and
tag names, outcome and reason codes, table definitions, metric names (`metric_names`), the names of things
(`names`), the URL policy, each function's environment-config model (`settings`), and the ports the logic is
written against (`ports`: metrics, logs, tokens, clock, the three status-table ledgers).

Data only, no I/O: a module here may import pydantic and the standard library, never boto3, botocore, requests or
Powertools, and nothing here talks to AWS or the network (the settings models read the environment mapping they
are given, `os.environ` by default; that is their input, not I/O). A test holds the import rule
(`tests/unit/shared/test_contracts_boundary.py`).

What talks to AWS or Topcoder is an adapter (`mm_adapters`: the status store, the challenge-config loader, the
Topcoder clients and token providers, the metrics sink, the Kafka-failure replay): adapters import contracts,
never the reverse.
"""
