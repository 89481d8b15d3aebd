"""Adapters: the code that talks to AWS and Topcoder for the functions (status store, config loader,
Topcoder clients, botocore clients). Depends on `mm_contracts`; nothing here builds a client at import time."""
