//! RabbitMQ (AMQP 0-9-1) transport, wire compatible with Python oslo.messaging: not yet implemented.
