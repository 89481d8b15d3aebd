"""certificate_monitor: daily check of the Kafka mTLS client certificate's expiry (decision 056)."""
