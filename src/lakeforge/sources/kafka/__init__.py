"""``type: kafka``: topics of a Kafka-protocol broker, JSON values or Debezium change events."""
