"""``type: nats``: a NATS JetStream stream read by a durable pull consumer."""
